r"""Partitioning a :class:`~torch_autoscale.store.GraphStore` with LPMetis,
streamed: label propagation reads the on-disk CSR a block of rows at a
time, coarse graphs are written to temporary files, and memory is bounded
by the number of nodes and a block, not by the number of edges."""
import logging
import os
import os.path as osp
from typing import Iterator, Optional, Tuple, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.partition.lpmetis import (
    Block,
    CoarseGraph,
    Column,
    Workspace,
    check_lpmetis_args,
    coalesce_rows,
    drop_zeros,
    relative_weight,
    rows_of,
    run_lpmetis,
)
from torch_autoscale.utils.checks import check_int
from torch_autoscale.utils.sparse import row_blocks

from .format import GraphStore, GraphStoreWriter
from .ingest import CHUNK_EDGES

log = logging.getLogger(__name__)

MAX_COARSE_ENTRIES: int = 1 << 25
r"""The default number of coarse-graph entries METIS gets in memory from
:func:`lpmetis_store` (a few GiB of METIS' working memory)."""


class StoreWorkspace(Workspace):
    r"""LPMetis' edge-sized intermediates as memory-mapped files of a
    :class:`~torch_autoscale.store.GraphStoreWriter` that is never
    committed: its space is reserved when an array is created (a full disk
    is a :class:`~torch_autoscale.errors.StorageFullError` at once), and
    :meth:`close` removes everything.

    Args:
        path (str): The folder of the temporary files (created next to it
            as a hidden temporary folder).
    """
    streaming = True

    def __init__(self, path: str):
        super().__init__(torch.device('cpu'))
        self.writer = GraphStoreWriter(path, num_nodes=0, overwrite=True,
                                       checksums=False)
        self.folder = self.writer.tmp

    def empty(self, name: str, size: int, dtype: torch.dtype) -> Tensor:
        return self.writer.create(name, (size, ), dtype)

    def column(self, name: str, capacity: int,
               dtype: torch.dtype) -> Column:
        return Column(dtype, self.device, out=self.empty(name, capacity,
                                                         dtype))

    def shrink(self, t: Tensor, size: int) -> Tensor:
        return t[:size]

    def release(self, *names: str) -> None:
        for name in names:
            if name in self.writer:
                self.writer.drop(name)

    def close(self) -> None:
        r"""Removes every file."""
        self.writer.abort()


class StoreBlocks:
    r"""The graph LPMetis partitions, read from a symmetric
    :class:`~torch_autoscale.store.GraphStore` a block of rows at a time:
    every row's duplicate entries merged (weights, the store's
    :obj:`"value"` or ones, summed in :obj:`float64`), self-loops dropped,
    weights divided by :obj:`max_value` (the largest merged weight, see
    :func:`scan_store`), zero weights dropped. These are the rows
    :func:`~torch_autoscale.partition.lpmetis` builds in memory from the same
    edges (with all weights doubled, which the division cancels).

    Args:
        store (GraphStore): The graph.
        chunk_edges (int): The store's entries per block.
        max_value (float): The largest merged weight.
    """
    def __init__(self, store: GraphStore, chunk_edges: int,
                 max_value: float):
        self.store = store
        self.chunk_edges = chunk_edges
        self.max_value = max_value

    @property
    def num_nodes(self) -> int:
        r"""The number of nodes."""
        return self.store.num_nodes

    @property
    def num_entries(self) -> int:
        r"""The number of entries of the store (an upper bound of the
        graph's)."""
        return self.store.num_edges

    def raw_blocks(self) -> Iterator[Tuple[int, Tensor, Tensor,
                                           Optional[Tensor]]]:
        r"""Yields the store's row blocks :obj:`(r0, counts, col, value)`
        as they are on disk (:obj:`value` is :obj:`None` without a
        :obj:`"value"` array)."""
        rowptr, col = self.store['rowptr'], self.store['col']
        value = self.store['value'] if 'value' in self.store else None
        for r0, r1 in row_blocks(rowptr, self.chunk_edges):
            p0, p1 = int(rowptr[r0]), int(rowptr[r1])
            yield (r0, rowptr[r0 + 1:r1 + 1] - rowptr[r0:r1], col[p0:p1],
                   value[p0:p1] if value is not None else None)

    def blocks(self) -> Iterator[Block]:
        r"""Yields the graph's row blocks :obj:`(r0, counts, col,
        weight)`."""
        for r0, counts, col, value in self.raw_blocks():
            counts, col, total = coalesce_rows(r0, counts, col, value)
            weight = relative_weight(total, self.max_value)
            yield (r0, ) + drop_zeros(counts, col, weight)

    def load(self) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The whole graph as CSR arrays in memory."""
        counts, cols, weights = [], [], []
        for _, c, col, weight in self.blocks():
            counts.append(c)
            cols.append(col)
            weights.append(weight)
        counts = torch.cat(counts) if counts else torch.zeros(
            0, dtype=torch.long)
        rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=rowptr[1:])
        if not cols:
            return rowptr, torch.zeros(0, dtype=torch.long), torch.zeros(0)
        return rowptr, torch.cat(cols), torch.cat(weights)


def scan_store(store: GraphStore, chunk_edges: int,
               progress: bool = True) -> Tuple[Tensor, float]:
    r"""One pass over :obj:`store` that checks what LPMetis needs and
    returns the number of neighbours of every node (self-loops, duplicates
    and zero weights left out) and the largest merged weight.

    Raises:
        ~torch_autoscale.errors.PartitionInputError: If a value is
            negative, NaN or infinite, or the adjacency is not symmetric
            (some node has more entries in its row than in its column).
    """
    n = store.num_nodes
    reader = StoreBlocks(store, chunk_edges, 1.0)
    degree = torch.zeros(n, dtype=torch.long)
    in_count = torch.zeros(n, dtype=torch.long)
    max_value = 0.0
    bar = tqdm(total=n, desc='LPMetis: scanning the graph', unit=' nodes',
               unit_scale=True, disable=not progress, leave=False)
    for r0, counts, col, value in reader.raw_blocks():
        in_count += torch.bincount(col, minlength=n)
        if value is not None:
            if value.is_complex() or value.dtype == torch.bool:
                raise PartitionInputError(
                    f"the 'value' array of graph store {store.path!r} must "
                    f"be real (got {value.dtype})")
            bad = ~torch.isfinite(value.double()) | (value < 0)
            if bool(bad.any()):
                raise PartitionInputError(
                    f"the 'value' array of graph store {store.path!r} holds "
                    f"negative, NaN or infinite edge weights (first at "
                    f"entry {int(store['rowptr'][r0]) + int(bad.nonzero()[0])}"
                    f"); LPMetis needs finite non-negative weights")
        c, _, total = coalesce_rows(r0, counts, col, value)
        degree[r0:r0 + c.numel()] = torch.bincount(
            rows_of(c)[total > 0], minlength=c.numel())
        if total.numel() > 0:
            max_value = max(max_value, float(total.max()))
        bar.update(counts.numel())
    bar.close()
    rowptr = store['rowptr']
    if not torch.equal(in_count, rowptr[1:] - rowptr[:-1]):
        node = int((in_count != rowptr[1:] - rowptr[:-1]).nonzero()[0])
        raise PartitionInputError(
            f"LPMetis needs a symmetric adjacency, but node {node} of graph "
            f"store {store.path!r} has {int(rowptr[node + 1] - rowptr[node])}"
            f" entries in its row and {int(in_count[node])} in its column; "
            f"write the store from an undirected graph (e.g., "
            f"'ingest_edge_list(..., undirected=True)')")
    return degree, max_value


def lpmetis_store(store: GraphStore, num_parts: int, p_ratio: float = 0.5,
                  p_b: float = 0.1, rounds: int = 2,
                  seed: Optional[int] = None, iterations: int = 5,
                  max_cluster_size: Optional[int] = None, refine: int = 4,
                  chunk_edges: int = CHUNK_EDGES,
                  workdir: Optional[str] = None, progress: bool = True,
                  verbose: bool = True,
                  max_coarse_entries: Optional[int] = MAX_COARSE_ENTRIES,
                  return_coarse: bool = False
                  ) -> Union[Tensor, Tuple[Tensor, CoarseGraph]]:
    r"""Partitions the graph of :obj:`store` into :obj:`num_parts` parts
    via LPMetis, streamed from disk: the same partition as
    :func:`~torch_autoscale.partition.lpmetis` gives for the same graph and
    seed and :obj:`max_coarse_entries`, with memory bounded by the number
    of nodes, :obj:`chunk_edges` and :obj:`max_coarse_entries`, not by the
    number of edges.

    The two share every step (see
    :mod:`~torch_autoscale.partition.lpmetis`); here, every pass reads the
    graph a block of rows of about :obj:`chunk_edges` entries at a time:

    1. a scan checks the weights and the symmetry and counts every node's
       neighbours (for the degree order) and the largest weight;
    2. every round prunes the graph block by block into a temporary file
       (the kept entries and their scores), runs :obj:`iterations` label
       updates over its blocks (per-node state: labels, cluster sizes,
       proposals; the capacity admission is global, per node), and
       contracts the clusters into a coarse graph written as CSR into
       temporary files (count, scatter, sort rows, as
       :func:`~torch_autoscale.store.ingest_edge_list` does);
    3. the last coarse graph is loaded (at most
       :obj:`max_coarse_entries` entries, every node's heaviest) and split
       by METIS; the
       refinement streams the original graph's blocks again.

    The store must hold a symmetric adjacency (every edge in both
    directions, with the same weight), as
    :func:`~torch_autoscale.store.ingest_edge_list` with
    :obj:`undirected=True` or
    :func:`~torch_autoscale.store.store_from_data` of an undirected graph
    write it; self-loops are ignored and duplicate entries merged (their
    weights summed). Its partition equals that of
    :func:`~torch_autoscale.partition.lpmetis` on the same edges bit for
    bit when every edge is stored once per direction or the graph is
    unweighted (weighted duplicates are summed in another order, which can
    change a last bit).

    Memory: a few :obj:`int64` arrays per node, plus the temporaries of a
    block (a few times :obj:`chunk_edges` entries, or the longest row: a
    row is never split, and a coarse row holds the entries of a whole
    cluster, at most :obj:`max_cluster_size` times the largest degree) and
    the final coarse graph, which METIS needs in memory (at most
    :obj:`max_coarse_entries` entries). Disk: the pruned
    graph and two coarse graphs, at most about 30 bytes per entry of the
    store, in :obj:`workdir`, removed at the end.

    Args:
        store (GraphStore): The graph (symmetric adjacency; its
            :obj:`"value"` array, if any, holds the edge weights).
        num_parts (int): The number of parts, in :obj:`[1, num_nodes]`.
        p_ratio (float, optional): See
            :func:`~torch_autoscale.partition.lpmetis`.
            (default: :obj:`0.5`)
        p_b (float, optional): See
            :func:`~torch_autoscale.partition.lpmetis`.
            (default: :obj:`0.1`)
        rounds (int, optional): The number of label-propagation and
            coarsening rounds. (default: :obj:`2`)
        seed (int, optional): The seed of the draws. (default:
            :obj:`None`, drawn from PyTorch's global generator)
        iterations (int, optional): Label updates per round.
            (default: :obj:`5`)
        max_cluster_size (int, optional): The largest number of original
            nodes a cluster may hold. (default: :obj:`None`, as
            :func:`~torch_autoscale.partition.lpmetis`)
        refine (int, optional): Label updates on the original graph after
            METIS. (default: :obj:`4`)
        chunk_edges (int, optional): The entries of a block of rows.
            (default: :obj:`CHUNK_EDGES`)
        workdir (str, optional): The folder of the temporary files.
            (default: :obj:`None`, the folder that holds :obj:`store`)
        progress (bool, optional): Whether to show progress bars.
            (default: :obj:`True`)
        verbose (bool, optional): Whether to log every round.
            (default: :obj:`True`)
        max_coarse_entries (int, optional): The most entries of the coarse
            graph METIS gets in memory (see
            :func:`~torch_autoscale.partition.lpmetis`); :obj:`None` for
            all. (default: :obj:`MAX_COARSE_ENTRIES`)
        return_coarse (bool, optional): Whether to also return the coarse
            graph METIS split (in memory, at most
            :obj:`max_coarse_entries` entries) and every node's coarse
            node, a :class:`~torch_autoscale.partition.lpmetis.CoarseGraph`
            equal to that of :func:`~torch_autoscale.partition.lpmetis`.
            (default: :obj:`False`)

    Returns:
        torch.Tensor: The part id of every node, an :obj:`int64` tensor of
        shape :obj:`[num_nodes]` in which every id of
        :obj:`[0, num_parts)` occurs; with :obj:`return_coarse`, a tuple
        of it and the coarse graph.

    Raises:
        ValueError: If an argument is out of range (the message names it).
        ~torch_autoscale.errors.PartitionInputError: If a weight is
            negative, NaN or infinite, or the adjacency is not symmetric.
        ~torch_autoscale.errors.StorageFullError: If :obj:`workdir` has no
            room for the temporary files.

    Example:
        >>> store = store_from_data(data, 'graph')
        >>> cluster = lpmetis_store(store, num_parts=64, seed=0)
        >>> torch.equal(cluster, lpmetis(data.edge_index, data.num_nodes,
        ...                              64, seed=0))
        True
    """
    if not isinstance(store, GraphStore):
        raise ValueError(f"'store' must be a GraphStore (got "
                         f"{type(store).__name__}); open one with "
                         f"GraphStore(path)")
    n = store.num_nodes
    num_parts, rounds, iterations, max_cluster_size, refine, seed = \
        check_lpmetis_args(n, num_parts, p_ratio, p_b, rounds, iterations,
                           max_cluster_size, refine, seed)
    chunk_edges = check_int(chunk_edges, 'chunk_edges', 1)
    if max_coarse_entries is not None:
        max_coarse_entries = check_int(max_coarse_entries,
                                       'max_coarse_entries', 0)
    if workdir is None:
        workdir = osp.dirname(osp.abspath(store.path))
    workdir = os.fspath(workdir)
    if not osp.isdir(workdir):
        raise ValueError(f"'workdir' must be an existing folder (got "
                         f"{workdir!r})")
    if num_parts == 1 and not return_coarse:
        return torch.zeros(n, dtype=torch.long)
    degree, max_value = scan_store(store, chunk_edges, progress)
    graph = StoreBlocks(store, chunk_edges, max_value)
    name = f'.{osp.basename(osp.abspath(store.path))}.lpmetis-{os.getpid()}'
    ws = StoreWorkspace(osp.join(workdir, name))
    try:
        cluster, coarse = run_lpmetis(
            graph, degree, num_parts, float(p_ratio), float(p_b), rounds,
            seed, iterations, max_cluster_size, refine, ws, chunk_edges,
            verbose, progress, max_coarse_entries, return_coarse)
    finally:
        ws.close()
    return (cluster, coarse) if return_coarse else cluster

