r"""The memory and time model: what one configuration of GAS training
needs on the device, in host memory and on disk, the history bytes it
moves, and a modelled cost that ranks configurations."""
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Union

import torch

from torch_autoscale.history import STORAGES

from .placement import DTYPES, HistoryFate, Placement
from .sizes import format_bytes
from .stats import GraphStats, HaloStats, ModelSpec


@dataclass(frozen=True)
class Hardware:
    r"""Throughputs the time model uses to rank plans (relative times;
    only their ratios matter).

    Args:
        flops (float, optional): Sustained floating point operations per
            second. (default: :obj:`1e12`)
        host_bandwidth (float, optional): Bytes per second between host and
            device memory (ignored on a CPU, where they are the same
            memory). (default: :obj:`12e9`)
        disk_bandwidth (float, optional): Bytes per second of random reads
            and writes of the disk tier. (default: :obj:`1.5e9`)
        overlap (float, optional): The fraction of host transfers hidden
            behind compute (GAS' asynchronous history pool), in
            :obj:`[0, 1]`. (default: :obj:`0.9`)
    """
    flops: float = 1e12
    host_bandwidth: float = 12e9
    disk_bandwidth: float = 1.5e9
    overlap: float = 0.9


@dataclass
class Estimate:
    r"""What :func:`estimate` predicts for one configuration.

    Attributes:
        device_bytes (int): The peak memory of a training step on the
            compute device: parameters, gradients and optimizer states, the
            largest mini-batch (features and adjacency), the activations
            autograd keeps, and device-tier histories.
        host_bytes (int): Host memory: the graph and host-tier histories.
            A graph memory-mapped from a store counts only with what stays
            in memory and one mini-batch's rows; the page cache the
            operating system fills as it reads the store is reclaimable
            and not counted.
        disk_bytes (int): Disk-tier histories.
        transfer_bytes (int): History bytes moved per epoch (pulls and
            pushes of host- and disk-tier histories).
        cost (float): The modelled cost of an epoch: operation and byte
            counts over the :class:`Hardware` throughputs. It only ranks
            plans against each other; it is not a measured time.
        breakdown (dict): Every term, in bytes.
        store_bytes (int, optional): The bytes of the graph store the graph
            is memory-mapped from, on disk; not part of
            :obj:`disk_bytes`, which the plan writes. (default:
            :obj:`None`, a graph in memory)
    """
    device_bytes: int
    host_bytes: int
    disk_bytes: int
    transfer_bytes: int
    cost: float
    breakdown: Dict[str, int] = field(default_factory=dict)
    store_bytes: Optional[int] = None

    def __str__(self) -> str:
        parts = ', '.join(f'{k} {format_bytes(v)}'
                          for k, v in self.breakdown.items())
        store = ('' if self.store_bytes is None else
                 f', graph {format_bytes(self.store_bytes)} on disk '
                 f'(memory-mapped)')
        return (f'device {format_bytes(self.device_bytes)}, host '
                f'{format_bytes(self.host_bytes)}, disk '
                f'{format_bytes(self.disk_bytes)}{store}, moved per epoch '
                f'{format_bytes(self.transfer_bytes)} ({parts})')


class TableCost(NamedTuple):
    r"""What one history costs in one tier and dtype.

    Args:
        table (int): The bytes of the table.
        moved (float): The bytes pulled and pushed per epoch.
        cost (float): The modelled transfer cost per epoch.
    """
    table: int
    moved: float
    cost: float


@dataclass(frozen=True)
class Terms:
    r"""The placement-independent parts of the estimate, and the cost of
    every fate of every history and layer.

    Args:
        fixed (dict): The device bytes every placement needs: parameters
            with their gradients and optimizer states, and the largest
            mini-batch.
        act (list of float): The activation bytes autograd keeps for every
            layer.
        act_recompute (list of float): The same, when the layer is
            recomputed (its input only).
        flops_layer (list of float): The forward operations of every layer
            per mini-batch.
        epoch_flops (float): The operations of an epoch (forward and
            backward).
        histories (list of dict): For every history, the
            :class:`TableCost` of every :class:`HistoryFate`.
        graph_host (dict, optional): The host bytes of the graph every
            placement needs (on a CPU, beyond the step's tensors of
            :obj:`fixed`), by term. (default: none)
    """
    fixed: Dict[str, int]
    act: List[float]
    act_recompute: List[float]
    flops_layer: List[float]
    epoch_flops: float
    histories: List[Dict[HistoryFate, TableCost]]
    graph_host: Dict[str, int] = field(default_factory=dict)


def terms(stats: GraphStats, spec: ModelSpec, halo: HaloStats,
          hardware: Hardware, cpu: bool) -> Terms:
    r"""The terms of the estimate of every placement of a configuration.

    Args:
        stats (GraphStats): The graph's sizes.
        spec (ModelSpec): The model's shape.
        halo (HaloStats): The mini-batch sizes.
        hardware (Hardware): The throughputs of the time model.
        cpu (bool): Whether the compute device is the CPU (host-tier
            histories then move nothing).
    """
    widths = spec.widths
    feature_row = stats.feature_bytes / max(stats.num_nodes, 1)
    rows = halo.max_rows
    fixed = {
        'parameters': 4 * spec.num_parameters * (2 + spec.optimizer_states),
        'batch': int(rows * feature_row + 12 * halo.max_edges +
                     8 * (halo.max_nodes + 1)),
    }
    # Activations of every layer: its input rows (in-batch + halo) times
    # the input width, and its output rows (in-batch) times the output
    # width, times the bytes kept per element. Full-batch (one batch, no
    # halo), a hidden layer's input is the previous layer's output, kept
    # once; with histories, it is a new tensor (fresh rows and pulled
    # halo). Recomputing a layer keeps only its input.
    full_batch = halo.num_batches == 1 and halo.max_halo == 0
    act = []
    for layer, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        per_input = spec.saved_per_input
        if full_batch and layer > 0:
            per_input = max(per_input - spec.saved_per_output, 0.0)
        act.append(rows * i * per_input +
                   halo.max_nodes * o * spec.saved_per_output)
    act_recompute = [rows * w * 4 for w in widths[:-1]]
    flops_layer = [
        2 * (halo.mean_nodes + halo.mean_halo) * i * o +
        2 * halo.mean_edges * o for i, o in zip(widths[:-1], widths[1:])
    ]
    epoch_flops = 3 * sum(flops_layer) * halo.num_batches  # fwd + bwd.
    histories = []
    for layer in range(spec.num_histories):
        w = widths[layer + 1]
        options = {}
        for dtype, size in DTYPES.items():
            table = stats.num_nodes * w * size
            # Per epoch: every node pushed once, every halo row pulled.
            moved = (halo.mean_nodes + halo.mean_halo) * halo.num_batches
            moved = moved * w * size
            for tier in STORAGES:
                if tier == 'device':
                    cost = 0.0
                elif tier == 'host':
                    cost = 0.0 if cpu else (
                        moved / hardware.host_bandwidth *
                        (1 - hardware.overlap))
                else:
                    cost = moved / hardware.disk_bandwidth
                options[HistoryFate(tier, dtype)] = TableCost(
                    table, moved, cost)
        histories.append(options)
    return Terms(fixed, act, act_recompute, flops_layer, epoch_flops,
                 histories, graph_host_bytes(stats, fixed['batch'], cpu))


def graph_host_bytes(stats: GraphStats, batch: int,
                     cpu: bool) -> Dict[str, int]:
    r"""The host bytes of the graph, by term: all of it (:obj:`"graph"`)
    when it is in memory; for a graph memory-mapped from a store, the
    arrays held in memory (:obj:`"graph in memory"`) and one mini-batch's
    rows, which the loader copies out of the maps (:obj:`"batch in host
    memory"`; on a CPU they are the step's own, counted on the device
    side). The pages of the store the operating system keeps in its page
    cache are reclaimable and count nowhere.

    Args:
        stats (GraphStats): The graph's sizes.
        batch (int): The bytes of the largest mini-batch's features and
            adjacency.
        cpu (bool): Whether the compute device is the CPU.
    """
    if not stats.on_disk:
        return {'graph': stats.resident_bytes}
    out = {'graph in memory': stats.resident_bytes}
    if not cpu:
        out['batch in host memory'] = batch
    return out


def estimate(stats: GraphStats, spec: ModelSpec, halo: HaloStats,
             placement: Optional[Placement] = None,
             hardware: Optional[Hardware] = None,
             device: Union[str, torch.device] = 'cuda') -> Estimate:
    r"""Predicts the memory and history traffic of GAS training.

    Args:
        stats (GraphStats): The graph's sizes.
        spec (ModelSpec): The model's shape.
        halo (HaloStats): The mini-batch sizes of the partition and the
            number of clusters per batch (see :func:`halo_stats`).
        placement (Placement, optional): The fate of every history and
            layer. (default: :meth:`Placement.default`)
        hardware (Hardware, optional): The throughputs of the time model.
            (default: :obj:`None`, :obj:`Hardware()`)
        device (torch.device or str, optional): The compute device. On a
            CPU, device-tier histories and the step's tensors share host
            memory, and host-tier pulls cost no transfer.
            (default: :obj:`"cuda"`)

    Returns:
        Estimate: The prediction.

    Raises:
        ValueError: If :obj:`placement` does not fit :obj:`spec` (see
            :meth:`Placement.check`).
    """
    placement = (placement or Placement.default(spec)).check(spec)
    hardware = hardware or Hardware()
    cpu = torch.device(device).type == 'cpu'
    t = terms(stats, spec, halo, hardware, cpu)
    breakdown = dict(t.fixed)
    act = sum(t.act_recompute[i] if r else t.act[i]
              for i, r in enumerate(placement.recompute))
    breakdown['activations'] = int(act)
    cost = t.epoch_flops / hardware.flops
    cost += sum(t.flops_layer[i] * halo.num_batches / hardware.flops
                for i, r in enumerate(placement.recompute) if r)
    tables = dict.fromkeys(STORAGES, 0)
    moved = 0.0
    for layer, fate in enumerate(placement.history_fates):
        option = t.histories[layer][fate]
        cost += option.cost
        tables[fate.tier] += option.table
        if fate.tier != 'device':
            moved += option.moved
    breakdown['device histories'] = tables['device']
    breakdown['host histories'] = tables['host']
    breakdown.update(t.graph_host)
    device_bytes = sum(t.fixed.values()) + int(act) + tables['device']
    host_bytes = sum(t.graph_host.values()) + tables['host']
    if cpu:  # One memory: the step's tensors are host memory too.
        host_bytes += device_bytes
    return Estimate(device_bytes=int(device_bytes), host_bytes=int(host_bytes),
                    disk_bytes=int(tables['disk']), transfer_bytes=int(moved),
                    cost=cost, breakdown=breakdown,
                    store_bytes=stats.store_bytes)
