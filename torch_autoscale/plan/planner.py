r"""The planner's entry point, :func:`plan`: partitions the graph for
every candidate number of parts, measures the mini-batches of every
candidate batch size, and places every history and layer of each with the
search, returning the fastest configuration that fits the budgets."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale.partition import partition, sort_by_cluster
from torch_autoscale.store.format import GraphStore

from .errors import nothing_fits
from .estimator import Hardware, estimate
from .placement import DTYPES, Placement
from .result import Plan
from .search import Candidate, search, search_space
from .sizes import ByteSize, parse_budget
from .stats import (
    GraphStats,
    ModelSpec,
    graph_edges,
    halo_stats,
    store_stats,
)


def plan(data: Union[Data, GraphStore], spec: ModelSpec,
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

    A graph memory-mapped from a :class:`~torch_autoscale.store.GraphStore`
    (the store itself, or on Linux its
    :meth:`~torch_autoscale.store.GraphStore.to_data`) is not charged to
    host memory: only the largest mini-batch's rows, which the loader
    copies out of it, and whatever of the graph is held in memory. The
    pages the operating system caches as it reads the store are
    reclaimable; the plan reports the store's bytes on disk apart.

    Args:
        data (torch_geometric.data.Data or GraphStore): The graph, with
            :obj:`x` and :obj:`edge_index` or a :obj:`torch.sparse_csr`
            :obj:`adj_t`, or a graph store.
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
            (default: :obj:`None`, :obj:`Hardware()`)
        device (torch.device or str, optional): The compute device.
            (default: :obj:`"cuda"`)
        seed (int, optional): The partition seed. (default: :obj:`0`)

    Returns:
        Plan: The configuration; print it for a report, lay the graph out
        with :meth:`Plan.apply` (a store with
        :func:`~torch_autoscale.store.permute_store` and
        :attr:`Plan.perm`), build the model with
        :meth:`Plan.model_kwargs` and the loader with
        :meth:`Plan.loader_kwargs`.

    Raises:
        BudgetError: If nothing fits (a :class:`ValueError`); the message
            names the budget that is too small, and it and the error's
            attributes the smallest budgets that would do.
        ValueError: If an argument is invalid, *e.g.*, :obj:`data` is
            neither a graph nor a store, or :obj:`spec.in_channels` differs
            from the width of :obj:`data.x`.
    """
    if precision not in ('float32', 'auto', 'float32-only'):
        raise ValueError(f"'precision' must be 'float32', 'auto' or "
                         f"'float32-only' (got {precision!r})")
    hardware = hardware or Hardware()
    cpu = torch.device(device).type == 'cpu'
    budgets = dict(device=parse_budget(device_budget, 'device_budget'),
                   host=parse_budget(host_budget, 'host_budget'))
    if not isinstance(data, (Data, GraphStore)):
        raise ValueError(f"'data' must be a 'torch_geometric.data.Data' "
                         f"object or a 'torch_autoscale.store.GraphStore' "
                         f"(got '{type(data).__name__}')")
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"'spec' must be a ModelSpec (got "
                         f"'{type(spec).__name__}')")
    if isinstance(data, GraphStore):
        store, data = data, data.to_data()  # Memory-mapped: nothing read.
        stats = store_stats(store, data)
    else:
        stats = GraphStats.from_data(data)
    if isinstance(data.x, Tensor) and spec.in_channels != stats.num_features:
        raise ValueError(
            f"'spec.in_channels' ({spec.in_channels}) does not match the "
            f"{stats.num_features} features of 'data.x' (shape "
            f"{list(data.x.shape)}); pass ModelSpec(in_channels="
            f"{stats.num_features}, ...) or the model built for this data "
            f"(ModelSpec.from_model)")
    candidates = _candidates(data, num_parts, batch_sizes, method, seed)

    # float32 histories first; half precision when allowed and needed.
    rounds = [('float32', )]
    if precision == 'auto':
        rounds = [tuple(DTYPES)]
    elif precision == 'float32':
        rounds.append(tuple(DTYPES))
    device_left = math.inf if budgets['device'] is None else \
        budgets['device']
    host_left = math.inf if budgets['host'] is None else budgets['host']
    best: Optional[Tuple[float, Candidate, Placement]] = None
    for dtypes in rounds:
        for candidate in candidates:
            space = search_space(stats, spec, candidate.halo, hardware, cpu,
                                 dtypes, disk_dir is not None, recompute)
            dev_left = device_left - space.fixed_device
            h_left = host_left - space.fixed_host
            if cpu:  # One memory for everything, in the first budget.
                dev_left = min(dev_left, h_left - space.fixed_device)
                h_left = math.inf
            if dev_left < 0 or h_left < 0:
                continue
            found = search(space.options, dev_left, h_left)
            if found is None:
                continue
            cost = space.base_cost + found.cost
            if best is None or cost < best[0]:
                best = (cost, candidate, Placement.from_fates(found.fates))
        if best is not None:
            break

    if best is None:
        raise nothing_fits(stats, spec, candidates, hardware, cpu, disk_dir,
                           device_budget, host_budget, precision, recompute)
    _, candidate, placement = best
    return Plan(num_parts=candidate.num_parts,
                batch_size=candidate.batch_size, placement=placement,
                estimate=estimate(stats, spec, candidate.halo, placement,
                                  hardware, device),
                halo=candidate.halo, perm=candidate.perm, ptr=candidate.ptr,
                disk_dir=disk_dir, budgets=budgets,
                device=str(torch.device(device)))


def _candidates(data: Data, num_parts: Optional[Union[int, Sequence[int]]],
                batch_sizes: Optional[Sequence[int]], method: str,
                seed: int) -> List[Candidate]:
    r"""Partitions the graph once per number of parts and measures the
    mini-batches of every batch size."""
    n = data.num_nodes
    if num_parts is None:
        num_parts = sorted({max(1, round(n / size))
                            for size in (1000, 4000, 16000)})
    elif isinstance(num_parts, int):
        num_parts = [num_parts]
    for k in num_parts:
        if not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"'num_parts' must hold integers in [1, {n}] "
                             f"(got {k!r})")
    edge_index = graph_edges(data)
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
            candidates.append(
                Candidate(k, b, perm, ptr, halo_stats(permuted, ptr, b, n)))
    if not candidates:
        raise ValueError("no candidate configuration: check 'num_parts' and "
                         "'batch_sizes'")
    return candidates
