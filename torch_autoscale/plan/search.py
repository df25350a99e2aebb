r"""The search: a dynamic program over the fates of every history and
layer of one configuration, keeping the Pareto front of device and host
bytes against the modelled cost."""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

from torch import Tensor

from .estimator import Hardware, terms
from .placement import Fate, LayerFate
from .stats import GraphStats, HaloStats, ModelSpec


class Candidate(NamedTuple):
    r"""A configuration to place: a partition and a batch size.

    Args:
        num_parts (int): The number of clusters.
        batch_size (int): Clusters per mini-batch.
        perm (torch.Tensor): The node permutation of the partition.
        ptr (torch.Tensor): The cluster boundaries after permuting.
        halo (HaloStats): The mini-batch sizes.
    """
    num_parts: int
    batch_size: int
    perm: Tensor
    ptr: Tensor
    halo: HaloStats


class Option(NamedTuple):
    r"""One fate of a history or layer, with what it costs.

    Args:
        device (float): Device bytes.
        host (float): Host bytes.
        cost (float): Modelled cost per epoch.
        fate (HistoryFate or LayerFate): The fate.
    """
    device: float
    host: float
    cost: float
    fate: Fate


class State(NamedTuple):
    r"""The fates chosen for a prefix of the histories and layers, with
    what they cost together.

    Args:
        device (float): Device bytes.
        host (float): Host bytes.
        cost (float): Modelled cost per epoch.
        fates (tuple of HistoryFate or LayerFate): The fates, in order.
    """
    device: float
    host: float
    cost: float
    fates: Tuple[Fate, ...]


class SearchSpace(NamedTuple):
    r"""The choices of one configuration.

    Args:
        options (list of list of Option): The options of every history,
            then of every layer.
        fixed_device (float): The device bytes every placement needs.
        base_cost (float): The modelled cost of an epoch before any fate.
        fixed_host (float, optional): The host bytes every placement needs
            (the graph's; on a CPU, besides the step's tensors of
            :obj:`fixed_device`). (default: :obj:`0.0`)
    """
    options: List[List[Option]]
    fixed_device: float
    base_cost: float
    fixed_host: float = 0.0


def search_space(stats: GraphStats, spec: ModelSpec, halo: HaloStats,
                 hardware: Hardware, cpu: bool, dtypes: Sequence[str],
                 disk: bool, recompute: bool) -> SearchSpace:
    r"""The options of every history and layer of a configuration.

    Args:
        stats (GraphStats): The graph's sizes.
        spec (ModelSpec): The model's shape.
        halo (HaloStats): The mini-batch sizes.
        hardware (Hardware): The throughputs of the time model.
        cpu (bool): Whether the compute device is the CPU: one memory,
            counted in the device budget, and no device tier (the same
            memory as the host tier).
        dtypes (list of str): The history dtypes allowed.
        disk (bool): Whether the disk tier is allowed.
        recompute (bool): Whether layers may be recomputed.
    """
    t = terms(stats, spec, halo, hardware, cpu)
    options = []
    for layer in range(spec.num_histories):
        history = []
        for fate, o in t.histories[layer].items():
            if fate.dtype not in dtypes or (fate.tier == 'disk'
                                            and not disk):
                continue
            if cpu and fate.tier == 'device':
                continue  # The same memory as 'host' on a CPU.
            dev = o.table if fate.tier == 'device' else 0
            host = o.table if fate.tier == 'host' else 0
            if cpu:  # One memory: count everything in the first budget.
                dev, host = dev + host, 0
            history.append(Option(dev, host, o.cost, fate))
        options.append(history)
    for layer in range(spec.num_layers):
        kept = [Option(t.act[layer], 0, 0.0, LayerFate(False))]
        if recompute:
            kept.append(
                Option(t.act_recompute[layer], 0,
                       t.flops_layer[layer] * halo.num_batches /
                       hardware.flops, LayerFate(True)))
        options.append(kept)
    return SearchSpace(options, sum(t.fixed.values()),
                       t.epoch_flops / hardware.flops,
                       sum(t.graph_host.values()))


def pareto(states: List[State]) -> List[State]:
    r"""Drops every state that another state beats in device bytes, host
    bytes and cost.

    Args:
        states (list of State): The states (sorted in place).
    """
    states.sort(key=lambda s: (s.cost, s.device, s.host))
    kept: List[State] = []
    for s in states:
        if not any(k.device <= s.device and k.host <= s.host for k in kept):
            kept.append(s)
    return kept


def search(options: List[List[Option]], device_left: float = math.inf,
           host_left: float = math.inf) -> Optional[State]:
    r"""The dynamic program over fates: the cheapest choice of one option
    per entry of :obj:`options` within both budgets (a Pareto front per
    prefix of the entries), or :obj:`None` if nothing fits.

    Args:
        options (list of list of Option): The options of every history and
            layer.
        device_left (float, optional): The device bytes available.
            (default: :obj:`math.inf`)
        host_left (float, optional): The host bytes available.
            (default: :obj:`math.inf`)
    """
    states = [State(0.0, 0.0, 0.0, ())]
    for entry in options:
        states = pareto([
            State(s.device + o.device, s.host + o.host, s.cost + o.cost,
                  s.fates + (o.fate, )) for s in states for o in entry
            if s.device + o.device <= device_left
            and s.host + o.host <= host_left
        ])
        if not states:
            return None
    return min(states, key=lambda s: (s.cost, s.device + s.host))

