r"""Where every tensor of GAS training lives: a memory estimator and a
planner.

Every datum of training with histories has one of four fates (as the
FlexGNN paper, KDD 2025, calls them): kept on the compute
device, offloaded to host memory, offloaded to disk, or recomputed.
:func:`estimate` predicts the memory and the traffic of one configuration
(number of parts, clusters per batch, a tier and dtype per history, the
layers whose activations are recomputed); :func:`plan` searches the
configurations for the fastest one that fits the given budgets, with a
dynamic program over the fates.

.. code-block:: python

    from torch_autoscale.plan import ModelSpec, plan

    spec = ModelSpec(num_layers=3, in_channels=128, hidden_channels=256,
                     out_channels=40)
    p = plan(data, spec, device_budget='8GB', host_budget='64GB',
             disk_dir='/scratch')
    print(p)  # A readable report.
    data, ptr = p.apply(data)
    model = GCN(data.num_nodes, 128, 256, 40, 3, plan=p)
    loader = SubgraphLoader(data, ptr, shuffle=True, plan=p)
"""
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = [
    'plan',
    'Plan',
    'BudgetError',
    'estimate',
    'Estimate',
    'GraphStats',
    'ModelSpec',
    'HaloStats',
    'halo_stats',
    'Placement',
    'Hardware',
    'parse_bytes',
    'format_bytes',
    'TIERS',
]

TIERS = ('device', 'host', 'disk')
r"""Where a history can live."""

DTYPES = {'float32': 4, 'bfloat16': 2, 'float16': 2}

ByteSize = Union[int, float, str]


def parse_bytes(value: ByteSize, name: str = 'budget') -> int:
    r"""Bytes from an integer or a string such as :obj:`"8GB"`,
    :obj:`"512 MiB"` (decimal and binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"'{name}' must be a number of bytes or a string "
                         f"such as '8GB' (got {value!r})")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{name}' must be a finite number of bytes "
                             f"(got {value!r}); pass None for no limit")
        if value < 0:
            raise ValueError(f"'{name}' must be non-negative (got {value})")
        return int(value)
    match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+|[0-9]+\.)\s*'
                         r'([kKmMgGtT]?)(i?)[bB]?\s*', str(value))
    if match is None:
        raise ValueError(f"'{name}' must be a number of bytes or a string "
                         f"such as '8GB' or '512MiB' (got {value!r})")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    power = ' KMGT'.index(unit.upper()) if unit else 0
    return int(float(number) * base**power)


def format_bytes(num: float) -> str:
    r"""A human-readable size, *e.g.*, :obj:`"1.50 GiB"`."""
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(num) < 1024:
            return f'{num:.2f} {unit}' if unit != 'B' else f'{int(num)} B'
        num /= 1024
    return f'{num:.2f} TiB'


@dataclass(frozen=True)
class GraphStats:
    r"""The sizes of a graph that memory depends on.

    Args:
        num_nodes (int): The number of nodes.
        num_edges (int): The number of stored adjacency entries (directed,
            self-loops included).
        num_features (int): The input feature width.
        feature_bytes (int, optional): The bytes of the node features
            (default: dense float32, :obj:`num_nodes * num_features * 4`).
    """
    num_nodes: int
    num_edges: int
    num_features: int
    feature_bytes: Optional[int] = None

    def __post_init__(self):
        for name in ('num_nodes', 'num_edges', 'num_features'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"'{name}' must be a non-negative integer "
                                 f"(got {value!r})")
        if self.feature_bytes is None:
            object.__setattr__(self, 'feature_bytes',
                               4 * self.num_nodes * self.num_features)

    @property
    def graph_bytes(self) -> int:
        r"""Host bytes of the features and the CSR adjacency (int64 column
        indices and row pointers, float32 values)."""
        return (self.feature_bytes + 12 * self.num_edges +
                8 * (self.num_nodes + 1))

    @classmethod
    def from_data(cls, data: Data) -> 'GraphStats':
        r"""The statistics of a PyG graph with :obj:`x` and :obj:`adj_t` or
        :obj:`edge_index`."""
        if 'adj_t' in data:
            adj = data.adj_t
            num_edges = (adj._nnz() if adj.layout != torch.strided else int(
                (adj != 0).sum()))
        elif 'edge_index' in data:
            num_edges = data.edge_index.size(1)
        else:
            raise ValueError("'data' needs an 'adj_t' or an 'edge_index'")
        x = data.x
        if x is None:
            return cls(data.num_nodes, num_edges, 0)
        if x.layout == torch.sparse_csr:
            feature_bytes = (x.values().numel() * x.element_size() +
                             8 * x.col_indices().numel() +
                             8 * x.crow_indices().numel())
        else:
            feature_bytes = x.numel() * x.element_size()
        num_features = 1 if x.dim() == 1 else x.size(-1)
        return cls(data.num_nodes, num_edges, num_features, feature_bytes)


@dataclass(frozen=True)
class ModelSpec:
    r"""The shape of a GAS model, as the estimator sees it: a stack of
    :obj:`num_layers` message-passing layers whose inputs are
    :obj:`in_channels`, then :obj:`hidden_channels` wide, owning one
    history per hidden layer.

    Args:
        num_layers (int): The number of message-passing layers.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width (and history width).
        out_channels (int): The output width.
        num_parameters (int, optional): The number of parameters (default:
            one :obj:`in x out` weight and bias per layer).
        saved_per_input (float, optional): The bytes autograd keeps per
            input element (row times width) of a layer: :obj:`4` for the
            float32 input a linear transform keeps; add :obj:`4` for a
            dropout mask. (default: :obj:`4.0`)
        saved_per_output (float, optional): The bytes kept per output
            element: :obj:`4` for the output an activation such as ReLU
            keeps. (default: :obj:`4.0`)
        optimizer_states (int, optional): Tensors the optimizer keeps per
            parameter (:obj:`2` for Adam). (default: :obj:`2`)
    """
    num_layers: int
    in_channels: int
    hidden_channels: int
    out_channels: int
    num_parameters: Optional[int] = None
    saved_per_input: float = 4.0
    saved_per_output: float = 4.0
    optimizer_states: int = 2

    def __post_init__(self):
        for name in ('num_layers', 'in_channels', 'hidden_channels',
                     'out_channels'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive integer (got "
                                 f"{value!r})")
        if self.num_parameters is None:
            object.__setattr__(
                self, 'num_parameters',
                sum(i * o + o for i, o in zip(self.widths[:-1],
                                              self.widths[1:])))

    @property
    def widths(self) -> List[int]:
        r"""The input width of every layer, then the output width."""
        return ([self.in_channels] + [self.hidden_channels] *
                (self.num_layers - 1) + [self.out_channels])

    @property
    def num_histories(self) -> int:
        return self.num_layers - 1

    @classmethod
    def from_model(cls, model: torch.nn.Module, **kwargs) -> 'ModelSpec':
        r"""The spec of a :class:`~torch_autoscale.nn.ScalableGNN` with
        :obj:`in_channels`, :obj:`hidden_channels`, :obj:`out_channels` and
        :obj:`num_layers` attributes (as the bundled models have)."""
        try:
            args = dict(num_layers=model.num_layers,
                        in_channels=model.in_channels,
                        hidden_channels=model.hidden_channels,
                        out_channels=model.out_channels)
        except AttributeError as e:
            raise ValueError(f"cannot read the widths of "
                             f"'{type(model).__name__}' ({e}); build a "
                             f"ModelSpec by hand") from None
        args['num_parameters'] = sum(p.numel() for p in model.parameters())
        args.update(kwargs)
        return cls(**args)


@dataclass(frozen=True)
class HaloStats:
    r"""The sizes of the mini-batches of a partition: in-batch nodes, halo
    nodes and adjacency rows' entries (mean and largest over the batches).
    """
    num_parts: int
    batch_size: int
    num_batches: int
    mean_nodes: float
    mean_halo: float
    mean_edges: float
    max_nodes: int
    max_halo: int
    max_edges: int
    max_rows: int  # The largest in-batch plus halo count.

    @property
    def halo_ratio(self) -> float:
        return self.mean_halo / max(self.mean_nodes, 1.0)


def halo_stats(edge_index: Tensor, ptr: Tensor, batch_size: int,
               num_nodes: Optional[int] = None) -> HaloStats:
    r"""The in-batch, halo and edge counts of every mini-batch of
    :obj:`batch_size` consecutive clusters of a graph permuted by cluster
    (boundaries :obj:`ptr`), as :class:`~torch_autoscale.loader.
    SubgraphLoader` builds them without shuffling.

    Args:
        edge_index (torch.Tensor): The permuted graph's edges
            :obj:`[2, num_edges]` (sources in row 0, targets in row 1).
        ptr (torch.Tensor): The cluster boundaries: an integer tensor
            from :obj:`0` to :obj:`num_nodes`, non-decreasing.
        batch_size (int): Clusters per mini-batch.
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, the largest index of :obj:`edge_index` plus one;
            pass it when the last nodes have no edges)

    Raises:
        ValueError: If :obj:`ptr` does not partition the graph's nodes, or
            an argument is malformed (the message names it).
    """
    ptr, num_nodes = _check_halo_args(edge_index, ptr, batch_size,
                                      num_nodes)
    num_parts = ptr.numel() - 1
    cluster = torch.repeat_interleave(torch.arange(num_parts), ptr.diff())
    group = cluster // batch_size
    num_batches = int(group.max()) + 1 if num_nodes > 0 else 0
    src, dst = edge_index[0], edge_index[1]
    g_dst = group[dst]
    nodes = torch.bincount(group, minlength=num_batches)
    edges = torch.bincount(g_dst, minlength=num_batches)
    outside = group[src] != g_dst
    key = torch.unique(g_dst[outside] * num_nodes + src[outside])
    halo = torch.bincount(key // num_nodes, minlength=num_batches)
    rows = nodes + halo
    return HaloStats(
        num_parts=num_parts, batch_size=batch_size, num_batches=num_batches,
        mean_nodes=float(nodes.float().mean()),
        mean_halo=float(halo.float().mean()),
        mean_edges=float(edges.float().mean()),
        max_nodes=int(nodes.max()), max_halo=int(halo.max()),
        max_edges=int(edges.max()), max_rows=int(rows.max()))


def _check_halo_args(edge_index: Tensor, ptr: Tensor, batch_size: int,
                     num_nodes: Optional[int]) -> Tuple[Tensor, int]:
    r"""Validates the arguments of :func:`halo_stats`; returns :obj:`ptr`
    as a CPU :obj:`int64` tensor and the number of nodes."""
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError(f"'batch_size' (clusters per batch) must be a "
                         f"positive integer (got {batch_size!r})")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or (
            edge_index.size(0) != 2) or edge_index.is_floating_point() or (
            edge_index.dtype == torch.bool):
        what = (f'shape {list(edge_index.shape)}, dtype {edge_index.dtype}'
                if isinstance(edge_index, Tensor) else
                type(edge_index).__name__)
        raise ValueError(f"'edge_index' must be an integer tensor of shape "
                         f"[2, num_edges] (got {what})")
    if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2 or (
            ptr.is_floating_point() or ptr.is_complex()
            or ptr.dtype == torch.bool):
        what = (f'shape {list(ptr.shape)}, dtype {ptr.dtype}' if isinstance(
            ptr, Tensor) else type(ptr).__name__)
        raise ValueError(f"'ptr' must be a one-dimensional integer tensor of "
                         f"cluster boundaries, of length num_parts + 1 (got "
                         f"{what}); pass the 'ptr' of 'sort_by_cluster'")
    ptr = ptr.long().cpu()
    if int(ptr[0]) != 0 or bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("'ptr' must start at 0 and be non-decreasing; pass "
                         "the 'ptr' of 'sort_by_cluster'")
    low = int(edge_index.min()) if edge_index.numel() > 0 else 0
    high = int(edge_index.max()) if edge_index.numel() > 0 else -1
    if low < 0:
        raise ValueError(f"'edge_index' must hold non-negative node indices "
                         f"(got {low})")
    end = int(ptr[-1])
    if end == 0 and (num_nodes is None or num_nodes == 0):
        raise ValueError("'ptr' describes a graph without nodes; there are "
                         "no mini-batches to measure")
    if num_nodes is None:
        if end != high + 1:
            raise ValueError(
                f"'ptr' ends at {end} but 'edge_index' spans {high + 1} "
                f"nodes: pass the 'ptr' of this graph's partition (it ends "
                f"at the number of nodes), or 'num_nodes' if nodes past "
                f"index {high} have no edges")
        return ptr, end
    if isinstance(num_nodes, bool) or not isinstance(
            num_nodes, int) or num_nodes < 0:
        raise ValueError(f"'num_nodes' must be a non-negative integer or "
                         f"None (got {num_nodes!r})")
    if high >= num_nodes:
        raise ValueError(f"'edge_index' holds node index {high}, which does "
                         f"not fit 'num_nodes={num_nodes}'")
    if end != num_nodes:
        raise ValueError(f"'ptr' ends at {end} but the graph has {num_nodes} "
                         f"nodes; pass the 'ptr' of this graph's partition "
                         f"(ptr[-1] == num_nodes)")
    return ptr, end


@dataclass(frozen=True)
class Placement:
    r"""The fate of every history and layer.

    Args:
        tiers (list of str): The tier of every history, from
            :obj:`TIERS`.
        dtypes (list of str): The storage dtype of every history
            (:obj:`"float32"`, :obj:`"bfloat16"`, :obj:`"float16"`).
        recompute (list of bool): Whether the activations of every layer
            are recomputed in the backward pass instead of kept
            (activation checkpointing).
    """
    tiers: Tuple[str, ...]
    dtypes: Tuple[str, ...]
    recompute: Tuple[bool, ...]

    @classmethod
    def default(cls, spec: ModelSpec) -> 'Placement':
        r"""Host histories in float32, nothing recomputed (what GAS does
        without a plan)."""
        return cls(('host', ) * spec.num_histories,
                   ('float32', ) * spec.num_histories,
                   (False, ) * spec.num_layers)

    def check(self, spec: ModelSpec) -> 'Placement':
        if len(self.tiers) != spec.num_histories or len(
                self.dtypes) != spec.num_histories:
            raise ValueError(f"a {spec.num_layers}-layer model owns "
                             f"{spec.num_histories} histories: give one tier "
                             f"and one dtype per history")
        if len(self.recompute) != spec.num_layers:
            raise ValueError(f"'recompute' needs one flag per layer "
                             f"({spec.num_layers})")
        for tier in self.tiers:
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; pass one of "
                                 f"{TIERS}")
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"unknown history dtype {dtype!r}; pass "
                                 f"one of {tuple(DTYPES)}")
        return self


@dataclass(frozen=True)
class Hardware:
    r"""Throughputs the time model uses to rank plans (relative times;
    only their ratios matter).

    Args:
        flops (float): Sustained floating point operations per second.
        host_bandwidth (float): Bytes per second between host and device
            memory (ignored on a CPU, where they are the same memory).
        disk_bandwidth (float): Bytes per second of random reads and writes
            of the disk tier.
        overlap (float): The fraction of host transfers hidden behind
            compute (GAS' asynchronous history pool), in :obj:`[0, 1]`.
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
        disk_bytes (int): Disk-tier histories.
        transfer_bytes (int): History bytes moved per epoch (pulls and
            pushes of host- and disk-tier histories).
        cost (float): The modelled cost of an epoch: operation and byte
            counts over the :class:`Hardware` throughputs. It only ranks
            plans against each other; it is not a measured time.
        breakdown (dict): Every term, in bytes.
    """
    device_bytes: int
    host_bytes: int
    disk_bytes: int
    transfer_bytes: int
    cost: float
    breakdown: Dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ', '.join(f'{k} {format_bytes(v)}'
                          for k, v in self.breakdown.items())
        return (f'device {format_bytes(self.device_bytes)}, host '
                f'{format_bytes(self.host_bytes)}, disk '
                f'{format_bytes(self.disk_bytes)}, moved per epoch '
                f'{format_bytes(self.transfer_bytes)} ({parts})')


def _terms(stats: GraphStats, spec: ModelSpec, halo: HaloStats,
           hardware: Hardware, cpu: bool) -> Dict[str, Any]:
    r"""The placement-independent parts of the estimate, and the cost of
    every fate of every history and layer."""
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
    hist = []
    for layer in range(spec.num_histories):
        w = widths[layer + 1]
        options = {}
        for dtype, size in DTYPES.items():
            table = stats.num_nodes * w * size
            # Per epoch: every node pushed once, every halo row pulled.
            moved = (halo.mean_nodes + halo.mean_halo) * halo.num_batches
            moved = moved * w * size
            for tier in TIERS:
                if tier == 'device':
                    cost = 0.0
                elif tier == 'host':
                    cost = 0.0 if cpu else (
                        moved / hardware.host_bandwidth *
                        (1 - hardware.overlap))
                else:
                    cost = moved / hardware.disk_bandwidth
                options[(tier, dtype)] = dict(table=table, moved=moved,
                                              cost=cost)
        hist.append(options)
    return dict(fixed=fixed, act=act, act_recompute=act_recompute,
                flops_layer=flops_layer, epoch_flops=epoch_flops, hist=hist)


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
        device (torch.device or str, optional): The compute device. On a
            CPU, device-tier histories and the step's tensors share host
            memory, and host-tier pulls cost no transfer.
            (default: :obj:`"cuda"`)

    Returns:
        Estimate: The prediction.
    """
    placement = (placement or Placement.default(spec)).check(spec)
    hardware = hardware or Hardware()
    cpu = torch.device(device).type == 'cpu'
    t = _terms(stats, spec, halo, hardware, cpu)
    breakdown = dict(t['fixed'])
    act = sum(t['act_recompute'][i] if r else t['act'][i]
              for i, r in enumerate(placement.recompute))
    breakdown['activations'] = int(act)
    cost = t['epoch_flops'] / hardware.flops
    cost += sum(
        t['flops_layer'][i] * halo.num_batches / hardware.flops
        for i, r in enumerate(placement.recompute) if r)
    device_hist = host_hist = disk_hist = moved = 0
    for layer, (tier, dtype) in enumerate(zip(placement.tiers,
                                              placement.dtypes)):
        option = t['hist'][layer][(tier, dtype)]
        cost += option['cost']
        if tier == 'device':
            device_hist += option['table']
        elif tier == 'host':
            host_hist += option['table']
            moved += option['moved']
        else:
            disk_hist += option['table']
            moved += option['moved']
    breakdown['device histories'] = device_hist
    breakdown['host histories'] = host_hist
    breakdown['graph'] = stats.graph_bytes
    device_bytes = sum(t['fixed'].values()) + int(act) + device_hist
    host_bytes = stats.graph_bytes + host_hist
    if cpu:  # One memory: the step's tensors are host memory too.
        host_bytes += device_bytes
    return Estimate(device_bytes=int(device_bytes), host_bytes=int(host_bytes),
                    disk_bytes=int(disk_hist), transfer_bytes=int(moved),
                    cost=cost, breakdown=breakdown)


# Planning ####################################################################


@dataclass
class Plan:
    r"""A configuration found by :func:`plan`.

    Attributes:
        num_parts (int): The number of clusters.
        batch_size (int): Clusters per mini-batch.
        placement (Placement): The tier and dtype of every history, and the
            layers to recompute.
        estimate (Estimate): Its predicted memory and traffic.
        halo (HaloStats): Its mini-batch sizes.
        perm (torch.Tensor): The node permutation of the partition (see
            :func:`~torch_autoscale.partition.permute`).
        ptr (torch.Tensor): The cluster boundaries after permuting.
        disk_dir (str, optional): The directory of disk-tier histories.
        budgets (dict): The budgets it was planned for, in bytes.
        device (str, optional): The compute device it was planned for, where
            device-tier histories live.
    """
    num_parts: int
    batch_size: int
    placement: Placement
    estimate: Estimate
    halo: HaloStats
    perm: Tensor
    ptr: Tensor
    disk_dir: Optional[str] = None
    budgets: Dict[str, Optional[int]] = field(default_factory=dict)
    device: Optional[str] = None

    def model_kwargs(self) -> Dict[str, Any]:
        r"""Keyword arguments of :class:`~torch_autoscale.nn.ScalableGNN`
        (and every bundled model) that realize the placement."""
        kwargs = dict(history_storage=list(self.placement.tiers),
                      history_dtype=[getattr(torch, d)
                                     for d in self.placement.dtypes],
                      history_dir=self.disk_dir,
                      recompute=list(self.placement.recompute))
        if 'device' in self.placement.tiers and self.device is not None:
            kwargs['history_device'] = self.device
        return kwargs

    def loader_kwargs(self) -> Dict[str, Any]:
        r"""Keyword arguments of
        :class:`~torch_autoscale.loader.SubgraphLoader`."""
        return dict(batch_size=self.batch_size)

    def apply(self, data: Data) -> Tuple[Data, Tensor]:
        r"""The graph permuted by the plan's partition, and the cluster
        boundaries, ready for :class:`~torch_autoscale.loader.
        SubgraphLoader`."""
        from torch_autoscale.partition import permute
        return permute(data, self.perm), self.ptr

    def __str__(self) -> str:
        e = self.estimate
        lines = [
            f'Plan: {self.num_parts} parts, {self.batch_size} per batch '
            f'({self.halo.num_batches} batches; largest {self.halo.max_nodes}'
            f' nodes + {self.halo.max_halo} halo)',
            f'  device {format_bytes(e.device_bytes)} of '
            f"{_budget(self.budgets.get('device'))}, host "
            f'{format_bytes(e.host_bytes)} of '
            f"{_budget(self.budgets.get('host'))}, disk "
            f'{format_bytes(e.disk_bytes)}; history traffic '
            f'{format_bytes(e.transfer_bytes)} per epoch',
        ]
        for i, (tier, dtype) in enumerate(zip(self.placement.tiers,
                                              self.placement.dtypes)):
            lines.append(f'  history {i}: {tier}, {dtype}')
        recompute = [i for i, r in enumerate(self.placement.recompute) if r]
        lines.append('  recompute layers: ' +
                     (', '.join(map(str, recompute)) if recompute else
                      'none'))
        lines.append('  ' + ', '.join(f'{k} {format_bytes(v)}'
                                      for k, v in e.breakdown.items()))
        return '\n'.join(lines)


def _budget(value: Optional[int]) -> str:
    return 'unlimited' if value is None else format_bytes(value)


def _pareto(states: List[Tuple[float, float, float, tuple]]
            ) -> List[Tuple[float, float, float, tuple]]:
    r"""Drops every (device, host, cost, choices) state that another
    state beats in all three."""
    states.sort(key=lambda s: (s[2], s[0], s[1]))
    kept: List[Tuple[float, float, float, tuple]] = []
    for s in states:
        if not any(k[0] <= s[0] and k[1] <= s[1] for k in kept):
            kept.append(s)
    return kept


def _search(items: List[List[Tuple[float, float, float, Any]]],
            device_left: float, host_left: float
            ) -> Optional[Tuple[float, float, float, tuple]]:
    r"""The dynamic program over fates: items are lists of options
    (device bytes, host bytes, cost, label); returns the fastest
    combination within both budgets (a Pareto front per prefix of items)."""
    states = [(0.0, 0.0, 0.0, ())]
    for options in items:
        states = _pareto([
            (d + od, h + oh, t + ot, c + (label, ))
            for d, h, t, c in states for od, oh, ot, label in options
            if d + od <= device_left and h + oh <= host_left
        ])
        if not states:
            return None
    return min(states, key=lambda s: (s[2], s[0] + s[1]))


def _fates(stats: GraphStats, spec: ModelSpec, halo: HaloStats,
           hardware: Hardware, cpu: bool, dtypes: Sequence[str],
           disk: bool, recompute: bool):
    t = _terms(stats, spec, halo, hardware, cpu)
    items = []
    for layer in range(spec.num_histories):
        options = []
        for (tier, dtype), o in t['hist'][layer].items():
            if dtype not in dtypes or (tier == 'disk' and not disk):
                continue
            if cpu and tier == 'device':
                continue  # The same memory as 'host' on a CPU.
            dev = o['table'] if tier == 'device' else 0
            host = o['table'] if tier == 'host' else 0
            if cpu:  # One memory: count everything in the first budget.
                dev, host = dev + host, 0
            options.append((dev, host, o['cost'], ('h', tier, dtype)))
        items.append(options)
    for layer in range(spec.num_layers):
        options = [(t['act'][layer], 0, 0.0, ('r', False))]
        if recompute:
            options.append((t['act_recompute'][layer], 0,
                            t['flops_layer'][layer] * halo.num_batches /
                            hardware.flops, ('r', True)))
        items.append(options)
    fixed_device = sum(t['fixed'].values())
    base_cost = t['epoch_flops'] / hardware.flops
    return items, fixed_device, base_cost


def plan(data: Data, spec: ModelSpec,
         device_budget: Optional[ByteSize] = None,
         host_budget: Optional[ByteSize] = None,
         disk_dir: Optional[str] = None,
         num_parts: Optional[Union[int, Sequence[int]]] = None,
         batch_sizes: Optional[Sequence[int]] = None,
         method: str = 'metis', precision: str = 'float32',
         recompute: bool = True, hardware: Optional[Hardware] = None,
         device: Union[str, torch.device] = 'cuda',
         seed: int = 0) -> Plan:
    r"""Finds the fastest GAS configuration that fits the memory budgets.

    For every candidate number of parts, the graph is partitioned once
    (:func:`~torch_autoscale.partition.partition`), and for every number of
    clusters per batch the exact mini-batch sizes are measured
    (:func:`halo_stats`). A dynamic program over the fates of every
    history (device, host or disk tier; float32 or half precision) and of
    every layer's activations (kept or recomputed) then finds the fastest
    placement within the budgets, and the fastest configuration overall is
    returned.

    Args:
        data (torch_geometric.data.Data): The graph, with :obj:`x` and
            :obj:`edge_index`.
        spec (ModelSpec): The model's shape.
        device_budget (int or str, optional): The compute device's memory,
            *e.g.*, :obj:`"8GB"`. (default: :obj:`None`, unlimited)
        host_budget (int or str, optional): Host memory. On a CPU it bounds
            everything. (default: :obj:`None`, unlimited)
        disk_dir (str, optional): A directory for disk-tier histories;
            without it, no history goes to disk. (default: :obj:`None`)
        num_parts (int or list of int, optional): The candidate numbers of
            parts. (default: :obj:`None`, clusters of about 1,000, 4,000
            and 16,000 nodes)
        batch_sizes (list of int, optional): Candidate clusters per batch.
            (default: :obj:`None`, powers of two up to the number of parts)
        method (str, optional): The partition method. (default:
            :obj:`"metis"`)
        precision (str, optional): :obj:`"float32"` uses half-precision
            histories only when nothing fits in float32; :obj:`"auto"`
            takes them whenever they are faster; :obj:`"float32-only"`
            never. (default: :obj:`"float32"`)
        recompute (bool, optional): Whether layers may be recomputed.
            (default: :obj:`True`)
        hardware (Hardware, optional): The throughputs of the time model.
        device (torch.device or str, optional): The compute device.
            (default: :obj:`"cuda"`)
        seed (int, optional): The partition seed. (default: :obj:`0`)

    Returns:
        Plan: The configuration; print it for a report.

    Raises:
        BudgetError: If nothing fits (a :class:`ValueError`); the message
            names the budget that is too small, and it and the error's
            attributes the smallest budgets that would do.
        ValueError: If an argument is invalid, *e.g.*,
            :obj:`spec.in_channels` differs from the width of
            :obj:`data.x`.
    """
    from torch_autoscale.partition import partition, sort_by_cluster

    if precision not in ('float32', 'auto', 'float32-only'):
        raise ValueError(f"'precision' must be 'float32', 'auto' or "
                         f"'float32-only' (got {precision!r})")
    hardware = hardware or Hardware()
    cpu = torch.device(device).type == 'cpu'
    device_left = (math.inf if device_budget is None else parse_bytes(
        device_budget, 'device_budget'))
    host_left = (math.inf if host_budget is None else parse_bytes(
        host_budget, 'host_budget'))
    if not isinstance(data, Data):
        raise ValueError(f"'data' must be a 'torch_geometric.data.Data' "
                         f"object (got '{type(data).__name__}')")
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"'spec' must be a ModelSpec (got "
                         f"'{type(spec).__name__}')")
    stats = GraphStats.from_data(data)
    if isinstance(data.x, Tensor) and spec.in_channels != stats.num_features:
        raise ValueError(
            f"'spec.in_channels' ({spec.in_channels}) does not match the "
            f"{stats.num_features} features of 'data.x' (shape "
            f"{list(data.x.shape)}); pass ModelSpec(in_channels="
            f"{stats.num_features}, ...) or the model built for this data "
            f"(ModelSpec.from_model)")
    n = stats.num_nodes
    if num_parts is None:
        num_parts = sorted({max(1, round(n / size))
                            for size in (1000, 4000, 16000)})
    elif isinstance(num_parts, int):
        num_parts = [num_parts]
    for k in num_parts:
        if not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"'num_parts' must hold integers in [1, {n}] "
                             f"(got {k!r})")
    rounds = [('float32', )]
    if precision == 'auto':
        rounds = [tuple(DTYPES)]
    elif precision == 'float32':
        rounds.append(tuple(DTYPES))

    edge_index = _edge_index(data)
    candidates = []
    for k in num_parts:
        cluster = partition(data, k, method=method, seed=seed)
        perm, ptr = sort_by_cluster(cluster, k)
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(n)
        permuted = inv[edge_index]
        sizes = batch_sizes or [2**i for i in range(int(math.log2(k)) + 1)]
        for b in sizes:
            if not isinstance(b, int) or not 1 <= b <= k:
                continue
            candidates.append((k, b, perm, ptr,
                               halo_stats(permuted, ptr, b, n)))
    if not candidates:
        raise ValueError("no candidate configuration: check 'num_parts' and "
                         "'batch_sizes'")

    best = None
    for dtypes in rounds:
        for k, b, perm, ptr, halo in candidates:
            items, fixed, base = _fates(stats, spec, halo, hardware, cpu,
                                        dtypes, disk_dir is not None,
                                        recompute)
            dev_left = device_left - fixed
            h_left = host_left - stats.graph_bytes
            if cpu:  # One memory for everything, in the first budget.
                dev_left, h_left = min(dev_left, h_left - fixed), math.inf
            if dev_left < 0 or h_left < 0:
                continue
            found = _search(items, dev_left, h_left)
            if found is None:
                continue
            cost = base + found[2]
            if best is None or cost < best[0]:
                best = (cost, k, b, perm, ptr, halo, found[3])
        if best is not None:
            break

    if best is None:
        raise _nothing_fits(stats, spec, candidates, hardware, cpu,
                            disk_dir, device_budget, host_budget, precision,
                            recompute)
    _, k, b, perm, ptr, halo, choices = best
    tiers = tuple(c[1] for c in choices if c[0] == 'h')
    dts = tuple(c[2] for c in choices if c[0] == 'h')
    rec = tuple(c[1] for c in choices if c[0] == 'r')
    placement = Placement(tiers, dts, rec)
    return Plan(num_parts=k, batch_size=b, placement=placement,
                estimate=estimate(stats, spec, halo, placement, hardware,
                                  device), halo=halo, perm=perm, ptr=ptr,
                disk_dir=disk_dir,
                budgets=dict(device=None if device_budget is None else
                             parse_bytes(device_budget),
                             host=None if host_budget is None else
                             parse_bytes(host_budget)),
                device=str(torch.device(device)))


def _edge_index(data: Data) -> Tensor:
    r"""The graph's edges as :obj:`[2, num_edges]` (sources, targets), from
    :obj:`edge_index` or from a CSR :obj:`adj_t` (rows are targets)."""
    if 'edge_index' in data:
        return data.edge_index
    if 'adj_t' in data and data.adj_t.layout == torch.sparse_csr:
        from torch_geometric.index import ptr2index
        col = data.adj_t.col_indices().long()
        row = ptr2index(data.adj_t.crow_indices().long(), col.numel())
        return torch.stack([col, row])
    raise ValueError("'data' needs an 'edge_index' or a torch.sparse_csr "
                     "'adj_t' for planning")


class BudgetError(ValueError):
    r"""Raised by :func:`plan` when no configuration fits the budgets.

    Attributes:
        min_device_bytes (int): The smallest device budget of any plan
            (with an unlimited host budget).
        min_host_bytes (int): The smallest host budget of any plan (with an
            unlimited device budget).
    """
    def __init__(self, message: str, min_device_bytes: int,
                 min_host_bytes: int):
        super().__init__(message)
        self.min_device_bytes = min_device_bytes
        self.min_host_bytes = min_host_bytes


def _nothing_fits(stats, spec, candidates, hardware, cpu, disk_dir,
                  device_budget, host_budget, precision,
                  recompute) -> BudgetError:
    r"""The error: which budget is too small, and the smallest budgets any
    candidate needs with the dtypes and fates :func:`plan` was allowed."""
    dtypes = ('float32', ) if precision == 'float32-only' else tuple(DTYPES)
    min_device = min_host = math.inf
    for k, b, _, _, halo in candidates:
        items, fixed, _ = _fates(stats, spec, halo, hardware, cpu, dtypes,
                                 disk_dir is not None, recompute)
        dev = fixed + sum(min(o[0] for o in opts) for opts in items)
        host = stats.graph_bytes + sum(min(o[1] for o in opts)
                                       for opts in items)
        if cpu:  # One memory: the step's tensors are host memory too.
            host += dev
        min_device, min_host = min(min_device, dev), min(min_host, host)
    min_device, min_host = int(math.ceil(min_device)), int(
        math.ceil(min_host))

    smallest = ['the smallest batches']
    if len(dtypes) > 1:
        smallest.insert(0, 'half-precision histories')
    if recompute:
        smallest.insert(-1, 'recomputed layers')
    if disk_dir is not None:
        smallest.insert(0, 'disk histories')
    how = f"({', '.join(smallest)})"
    hints = []
    if disk_dir is None:
        hints.append("pass 'disk_dir' to allow disk histories")
    if precision == 'float32-only':
        hints.append("allow half-precision histories with "
                     "precision='float32'")
    if not recompute:
        hints.append("allow recomputed layers with recompute=True")
    hint = ''.join(f'; {h}' for h in hints)

    device_bytes = None if device_budget is None else parse_bytes(
        device_budget, 'device_budget')
    host_bytes = None if host_budget is None else parse_bytes(
        host_budget, 'host_budget')
    where = ("on a CPU, where the step, the histories and the graph share "
             "one memory, " if cpu else '')
    failed = []
    if device_bytes is not None and device_bytes < min_device:
        failed.append(f"'device_budget' ({format_bytes(device_bytes)}) is "
                      f"below the {format_bytes(min_device)} the smallest "
                      f"plan {how} needs on the device")
    if host_bytes is not None and host_bytes < min_host:
        failed.append(f"'host_budget' ({format_bytes(host_bytes)}) is below "
                      f"the {format_bytes(min_host)} the smallest plan "
                      f"{how} needs in host memory" +
                      (', the graph included' if cpu else ''))
    if failed:
        message = (f"nothing fits: {where}{' and '.join(failed)}; "
                   f"raise {'it' if len(failed) == 1 else 'both'} to at "
                   f"least that{hint}")
    else:  # Each budget would do alone, but no plan fits both at once.
        message = (f"nothing fits device budget {_budget(device_bytes)} and "
                   f"host budget {_budget(host_bytes)} together: a plan "
                   f"needs a device budget of at least "
                   f"{format_bytes(min_device)} with unlimited host memory, "
                   f"and a host budget of at least {format_bytes(min_host)} "
                   f"with unlimited device memory, but none needs little of "
                   f"both; raise either budget{hint}")
    return BudgetError(message, min_device, min_host)
