r"""LPMetis: multi-level label propagation, then METIS on the coarse graph.

METIS is the quality reference for graph partitioning, but its memory and
time make it impractical on graphs with billions of edges. LPMetis, from the
`"LPS-GNN: Deploying Graph Neural Networks on Graphs with 100-Billion Edges"
<https://arxiv.org/abs/2507.14570>`_ paper, shrinks the graph first:

1. every node starts in its own cluster; edges whose relative weight
   :math:`P_{ij} = e_{ij} / \sum_m e_{im}` falls under :obj:`p_ratio` are
   pruned, unless a uniform draw falls under :obj:`p_b`;
2. every node adopts the label :math:`c` that maximizes
   :math:`\sum_{w \in \mathcal{N}(v), C_w = c} e_{vw} / s_w` over the kept
   edges, where :math:`s_w` is the number of nodes already merged into
   :math:`w`;
3. the clusters are contracted into nodes (edge weights summed), and steps 1
   and 2 repeat for :obj:`rounds` rounds;
4. METIS splits the small coarse graph into :obj:`num_parts` parts balanced
   in the number of original nodes, and every node takes its cluster's part.

Everything is vectorized: one label update is a sort of the kept edges by
(node, neighbour label), a segment sum and a per-node arg-max, so time and
memory grow with the number of edges, with no Python loop over nodes or
edges.

Every step works on a block of rows of a symmetric CSR graph and needs only
per-node state besides: random draws are counter-based hashes of
(seed, round, purpose, node or edge) (:func:`hash_uniform`), every sum runs
in the order of a row's entries, and the label admission is global but
per node. The in-memory :func:`lpmetis` runs the graph as one block;
:func:`~torch_autoscale.store.lpmetis_store` streams it from disk in blocks
and gets the same partition, bit for bit.
"""
import logging
import math
import time
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.index import ptr2index

from torch_autoscale.utils.sparse import row_blocks

from .backend import partition_csr
from .validation import check_int, check_seed, check_weight, to_edge_index

log = logging.getLogger(__name__)

MEMORY_CHUNK: int = 1 << 20
r"""The entries of a block of rows of :func:`lpmetis` in memory: the
temporaries of a step are a few times this, not the size of the graph."""

IMBALANCE: float = 1.03
r"""The largest part size over the mean that the refinement allows (METIS'
default tolerance)."""

#: What a draw is for: the part of its stream key (see :func:`stream_key`).
PRUNE, ACTIVE, REFINE, TIE = 1, 2, 3, 4


class CoarseGraph(NamedTuple):
    r"""The coarse graph LPMetis handed to METIS, kept for reuse (*e.g.*,
    by :class:`~torch_autoscale.transforms.CoarseEmbedding`): what
    :func:`lpmetis`, :func:`~torch_autoscale.store.lpmetis_store` and
    :func:`~torch_autoscale.partition.lpmetis_spark` return with
    :obj:`return_coarse=True`.

    The graph is symmetric CSR with columns sorted within rows and no
    self-loops; its weights are the summed weights of the original edges
    between two clusters, divided by the largest original weight. With
    :obj:`max_coarse_entries` in effect, it holds the entries METIS got
    (every coarse node's heaviest). Without coarsening (:obj:`rounds=0`,
    or nothing merged), it is the input graph itself.

    Attributes:
        node (torch.Tensor): The coarse node of every original node,
            :obj:`int64` of shape :obj:`[num_nodes]`.
        rowptr (torch.Tensor): The coarse graph's row pointers, of shape
            :obj:`[num_coarse_nodes + 1]`.
        col (torch.Tensor): Its columns.
        weight (torch.Tensor): Its entries' weights (:obj:`float32`).
        count (torch.Tensor): The original nodes of every coarse node.
        part (torch.Tensor): The part METIS gave every coarse node (before
            the refinement moved single nodes).
    """
    node: Tensor
    rowptr: Tensor
    col: Tensor
    weight: Tensor
    count: Tensor
    part: Tensor

    @property
    def num_nodes(self) -> int:
        r"""The number of coarse nodes."""
        return self.rowptr.numel() - 1

    def edge_index(self) -> Tensor:
        r"""The coarse graph as :obj:`[2, num_entries]` edge indices
        (both directions of every edge)."""
        row = ptr2index(self.rowptr, self.col.numel())
        return torch.stack([row, self.col.to(row.dtype)])

    def permute(self, perm: Tensor) -> 'CoarseGraph':
        r"""The same coarse graph for the original graph with its nodes
        reordered by :obj:`perm` (new node :obj:`i` is old node
        :obj:`perm[i]`, as in :func:`~torch_autoscale.partition.permute`).
        """
        if perm.numel() != self.node.numel():
            raise ValueError(f"'perm' must hold one entry per node "
                             f"({self.node.numel()}, got {perm.numel()})")
        return self._replace(node=self.node[perm.to(self.node.device)])

Block = Tuple[int, Tensor, Tensor, Tensor]
r"""A block of consecutive rows of a CSR graph: the first row :obj:`r0`,
the number of entries of every row of the block, and the entries' columns
and weights, row after row."""

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def lpmetis(
    edge_index: Tensor,
    num_nodes: Optional[int],
    num_parts: int,
    edge_weight: Optional[Tensor] = None,
    p_ratio: float = 0.5,
    p_b: float = 0.1,
    rounds: int = 2,
    seed: Optional[int] = None,
    iterations: int = 5,
    max_cluster_size: Optional[int] = None,
    refine: int = 4,
    verbose: bool = True,
    chunk_edges: int = MEMORY_CHUNK,
    max_coarse_entries: Optional[int] = None,
    return_coarse: bool = False,
) -> Union[Tensor, Tuple[Tensor, CoarseGraph]]:
    r"""Partitions a graph into :obj:`num_parts` parts via LPMetis, from the
    `"LPS-GNN: Deploying Graph Neural Networks on Graphs with 100-Billion
    Edges" <https://arxiv.org/abs/2507.14570>`_ paper (see the module
    documentation for the algorithm).

    The first round's labels are the nodes' ranks by decreasing degree, so
    label ties favour hubs. Label updates are synchronous, but in every
    iteration only a random half of the nodes update (the other half keeps
    its label), which breaks the two-colour oscillation of fully
    synchronous label propagation on bipartite pieces; ties go to the
    node's current label, then to the smallest label. A cluster grows only
    while it holds at most :obj:`max_cluster_size` original nodes (moves
    into a full cluster are refused, hubs first, then in node order).

    Every random draw is a counter-based hash of the seed, the round, the
    iteration, what it is for and the node (or the directed edge) it
    belongs to (:func:`hash_uniform`), and every sum runs in the order of
    a node's sorted neighbours, so the result depends on the graph and the
    seed only: not on the order of the edges, on :obj:`chunk_edges`, or on
    whether the graph is in memory or streamed from disk by
    :func:`~torch_autoscale.store.lpmetis_store`, which gives the same
    partition. By default, that cap is about 3% of a part,
    METIS' own default tolerance for part imbalance, so that METIS can always
    balance the parts by moving a cluster.

    As in :func:`~torch_autoscale.partition.metis`, the graph is symmetrized
    first (an edge given in both directions gets the sum of both weights)
    and self-loops are ignored.

    Edge weights are validated like those of
    :func:`~torch_autoscale.partition.metis` (negative, NaN or infinite
    ones raise :class:`~torch_autoscale.errors.PartitionInputError`) and
    divided by the largest one before label propagation, which only uses
    their ratios: weights of any magnitude (integers near :math:`2^{63}`,
    floats near :math:`10^{308}`) partition like the same weights divided
    down, and the coarsening's sums of weights cannot overflow. Edges of
    weight zero are dropped; if no edge is left, the parts are balanced by
    node count (ranges of the node order, sizes differing by at most one).
    The coarse graph reaches METIS through the same normalization as in
    :func:`~torch_autoscale.partition.metis`.

    Args:
        edge_index (torch.Tensor): The graph connectivity of shape
            :obj:`[2, num_edges]`, or a square sparse adjacency matrix whose
            values are ignored.
        num_nodes (int, optional): The number of nodes; inferred from
            :obj:`edge_index` if :obj:`None`.
        num_parts (int): The number of parts, in :obj:`[1, num_nodes]`.
        edge_weight (torch.Tensor, optional): Finite non-negative edge
            weights of shape :obj:`[num_edges]`, of any real dtype;
            zero-weight edges are dropped. (default: :obj:`None`, all ones)
        p_ratio (float, optional): Edges whose relative weight is at least
            this are always kept by the pruning step. (default: :obj:`0.5`)
        p_b (float, optional): The probability of keeping any other edge.
            (default: :obj:`0.1`)
        rounds (int, optional): The number of label-propagation and
            coarsening rounds :math:`T`. :obj:`0` runs METIS on the input
            graph. (default: :obj:`2`)
        seed (int, optional): The seed of the pruning and update draws; the
            result repeats for a seed, on every engine. (default:
            :obj:`None`, drawn from PyTorch's global generator)
        iterations (int, optional): Label updates per round.
            (default: :obj:`5`)
        max_cluster_size (int, optional): The largest number of original
            nodes a cluster may hold. (default: :obj:`None`, i.e.,
            :math:`\lceil \text{num_nodes} / (32 \cdot
            \text{num_parts}) \rceil`)
        refine (int, optional): Label updates on the original graph after
            METIS, with parts as labels and part sizes capped at METIS'
            tolerance: they move boundary nodes to the part most of their
            edges lead to (METIS refines every level of its hierarchy;
            this refines the levels label propagation skipped). :obj:`0`
            disables it. (default: :obj:`4`)
        verbose (bool, optional): Whether to log every round and the total
            time; callers that partition many small graphs turn it off.
            (default: :obj:`True`)
        chunk_edges (int, optional): The entries of a block of rows that
            a step works on at once; it bounds the temporaries and never
            changes the result. (default: :obj:`MEMORY_CHUNK`)
        max_coarse_entries (int, optional): The most entries (twice the
            edges) of the coarse graph METIS gets, in memory: if the last
            round leaves more, METIS gets every coarse node's heaviest
            entries only, as many per node as fit (at least one; see
            :func:`heaviest_entries`), so that no node loses all its links
            while the refinement still sees every edge. It bounds the
            memory of graphs whose coarse graph stays large, *e.g.*, with
            many random edges. (default: :obj:`None`, all of them)
        return_coarse (bool, optional): Whether to also return the coarse
            graph METIS split and every node's coarse node (a
            :class:`CoarseGraph`), *e.g.* for
            :class:`~torch_autoscale.transforms.CoarseEmbedding`.
            (default: :obj:`False`)

    Returns:
        torch.Tensor: The part id of every node, an :obj:`int64` tensor of
        shape :obj:`[num_nodes]` on the device of :obj:`edge_index`, in which
        every id of :obj:`[0, num_parts)` occurs; with
        :obj:`return_coarse`, a tuple of it and the :class:`CoarseGraph`.

    Raises:
        ValueError: If an argument is out of range (the message names it).
        ~torch_autoscale.errors.PartitionInputError: If an edge weight is
            negative, NaN or infinite (a subclass of :class:`ValueError`).
        ImportError: If no METIS backend is installed.

    Example:
        >>> from torch_geometric.utils import grid
        >>> edge_index, _ = grid(32, 32)
        >>> cluster = lpmetis(edge_index, 1024, num_parts=4, seed=0)
        >>> cluster.bincount()
        tensor([254, 261, 262, 247])
    """
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    device = edge_index.device
    edge_weight = check_weight(edge_weight, 'edge_weight',
                               edge_index.size(1),
                               'one entry per edge of `edge_index`')
    num_parts, rounds, iterations, max_cluster_size, refine, seed = \
        check_lpmetis_args(num_nodes, num_parts, p_ratio, p_b, rounds,
                           iterations, max_cluster_size, refine, seed)
    chunk_edges = check_int(chunk_edges, 'chunk_edges', 1)
    if max_coarse_entries is not None:
        max_coarse_entries = check_int(max_coarse_entries,
                                       'max_coarse_entries', 0)
    if num_parts == 1 and not return_coarse:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    graph = undirected_csr(edge_index, edge_weight, num_nodes)
    del edge_index, edge_weight
    graph.chunk_edges = chunk_edges
    cluster, coarse = run_lpmetis(graph, graph.degree(), num_parts,
                                  float(p_ratio), float(p_b), rounds, seed,
                                  iterations, max_cluster_size, refine,
                                  Workspace(device), chunk_edges, verbose,
                                  max_coarse_entries=max_coarse_entries,
                                  return_coarse=return_coarse)
    return (cluster, coarse) if return_coarse else cluster


def _signed(z: int) -> int:
    z &= _MASK64
    return z - (1 << 64) if z >= 1 << 63 else z


def _mix_int(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def mix64(z: Tensor) -> Tensor:
    r"""The finalizer of SplitMix64 (a bijection of 64-bit words with good
    avalanche) applied to every entry of the :obj:`int64` tensor :obj:`z`,
    in two's complement: :obj:`int64` products wrap, and every right shift
    is masked to make it a logical one. Returns a new tensor.

    .. math::
        z \leftarrow (z \oplus (z \gg 30)) \cdot
        \mathtt{0xbf58476d1ce4e5b9};\;
        z \leftarrow (z \oplus (z \gg 27)) \cdot
        \mathtt{0x94d049bb133111eb};\;
        z \leftarrow z \oplus (z \gg 31)

    Args:
        z (torch.Tensor): An :obj:`int64` tensor.
    """
    z = z.clone()
    for shift, factor in ((30, _M1), (27, _M2), (31, None)):
        z ^= (z >> shift) & ((1 << (64 - shift)) - 1)
        if factor is not None:
            z *= _signed(factor)
    return z


def stream_key(seed: int, *words: int) -> int:
    r"""The key of one stream of draws: a 64-bit hash of :obj:`seed` and
    :obj:`words` (*e.g.*, the round, the iteration and what the draws are
    for, such as :obj:`PRUNE`), as a signed :obj:`int64` value.

    Args:
        seed (int): The seed.
        *words (int): Further non-negative integers.
    """
    z = _mix_int(seed + _GOLDEN)
    for word in words:
        z = _mix_int((z ^ word) + _GOLDEN)
    return _signed(z)


def hash_bits(key: int, a: Tensor, b: Optional[Tensor] = None) -> Tensor:
    r"""Counter-based random bits: a 64-bit hash (as :obj:`int64`) of the
    stream :obj:`key` and the ids :obj:`a` (nodes), or the ordered pairs
    :obj:`(a, b)` (directed edges), entry by entry. Every value is a pure
    function of its inputs, so draws never depend on how many were drawn
    before or on how a graph is split into blocks, and any engine that
    wraps 64-bit products and has a logical right shift (*e.g.*, Spark
    SQL's :obj:`shiftrightunsigned`) computes the same bits:
    :math:`h = m(m(a + k) \oplus b + \gamma)` with :math:`m` =
    :func:`mix64` and :math:`\gamma` = :obj:`0x9e3779b97f4a7c15`.

    Args:
        key (int): A stream key from :func:`stream_key`.
        a (torch.Tensor): Node ids (:obj:`int64`).
        b (torch.Tensor, optional): Second ids of the pairs, of the shape
            of :obj:`a`. (default: :obj:`None`)
    """
    z = mix64(a + key)
    if b is not None:
        z ^= b
        z += _signed(_GOLDEN)
        z = mix64(z)
    return z


def hash_uniform(key: int, a: Tensor, b: Optional[Tensor] = None) -> Tensor:
    r"""Counter-based uniform draws in :math:`[0, 1)` (:obj:`float64`, the
    53 high bits of :func:`hash_bits`) for the ids :obj:`a` or the pairs
    :obj:`(a, b)`."""
    return bits_to_uniform(hash_bits(key, a, b))


def bits_to_uniform(bits: Tensor) -> Tensor:
    r"""Maps the :obj:`int64` hashes :obj:`bits` to :obj:`float64` draws in
    :math:`[0, 1)`, exactly: their 53 high bits times :math:`2^{-53}`."""
    return ((bits >> 11) & ((1 << 53) - 1)).double() * 2.0**-53


def uniform_below(bits: Tensor, p: float) -> Tensor:
    r"""Whether the draws of :obj:`bits` (see :func:`bits_to_uniform`) are
    below :obj:`p`, in integers: :math:`m 2^{-53} < p` if and only if
    :math:`m < \lceil p 2^{53} \rceil`."""
    return ((bits >> 11) & ((1 << 53) - 1)) < math.ceil(p * 2.0**53)


class CSRBlocks:
    r"""A symmetric graph as CSR (:obj:`rowptr`, :obj:`col`, positive
    :obj:`float32` :obj:`weight`; columns sorted within rows, no
    self-loops, one entry per neighbour) that LPMetis reads a block of rows
    at a time: all of it at once, or blocks of about :obj:`chunk_edges`
    entries (:func:`~torch_autoscale.utils.sparse.row_blocks`). The arrays
    may be in memory or memory-mapped.

    Args:
        rowptr (torch.Tensor): The row pointers (in memory).
        col (torch.Tensor): The columns.
        weight (torch.Tensor): The weights of the entries.
        chunk_edges (int, optional): The entries per block, or :obj:`None`
            for one block. (default: :obj:`None`)
    """
    def __init__(self, rowptr: Tensor, col: Tensor, weight: Tensor,
                 chunk_edges: Optional[int] = None):
        self.rowptr, self.col, self.weight = rowptr, col, weight
        self.chunk_edges = chunk_edges

    @property
    def num_nodes(self) -> int:
        r"""The number of nodes."""
        return self.rowptr.numel() - 1

    @property
    def num_entries(self) -> int:
        r"""The number of entries (twice the number of edges)."""
        return self.col.numel()

    def degree(self) -> Tensor:
        r"""The number of entries of every row."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def blocks(self) -> Iterator[Block]:
        r"""Yields the graph's row blocks :obj:`(r0, counts, col,
        weight)`."""
        if self.chunk_edges is None:
            yield 0, self.degree(), self.col, self.weight
            return
        for r0, r1 in row_blocks(self.rowptr, self.chunk_edges):
            p0, p1 = int(self.rowptr[r0]), int(self.rowptr[r1])
            yield (r0, self.rowptr[r0 + 1:r1 + 1] - self.rowptr[r0:r1],
                   self.col[p0:p1], self.weight[p0:p1])

    def load(self) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The CSR arrays in memory."""
        return self.rowptr, self.col.clone(), self.weight.clone()


class Column:
    r"""A one-dimensional array written front to back in pieces, in memory
    (the pieces are concatenated at :meth:`finish`) or into a preallocated
    array (*e.g.*, memory-mapped, of at least the total size)."""
    def __init__(self, dtype: torch.dtype, device: torch.device,
                 out: Optional[Tensor] = None):
        self.dtype, self.device, self.out = dtype, device, out
        self.parts: List[Tensor] = []
        self.size = 0

    def append(self, t: Tensor) -> None:
        r"""Appends :obj:`t`."""
        if self.out is None:
            self.parts.append(t)
        else:
            self.out[self.size:self.size + t.numel()] = t
        self.size += t.numel()

    def finish(self) -> Tensor:
        r"""The array written."""
        if self.out is not None:
            return self.out[:self.size]
        if len(self.parts) == 1:
            return self.parts[0]
        if not self.parts:
            return torch.empty(0, dtype=self.dtype, device=self.device)
        return torch.cat(self.parts)


class Workspace:
    r"""Where LPMetis keeps its edge-sized intermediates (pruned graphs,
    coarse graphs): in memory here;
    :func:`~torch_autoscale.store.lpmetis_store` uses memory-mapped files.

    Args:
        device (torch.device, optional): The device of the arrays.
            (default: :obj:`None`, the CPU)
    """
    #: Whether the arrays live on disk (contraction then streams too).
    streaming: bool = False
    #: The folder of temporary files of a streaming workspace.
    folder: Optional[str] = None

    def __init__(self, device: Optional[torch.device] = None):
        self.device = torch.device('cpu') if device is None else device

    def empty(self, name: str, size: int, dtype: torch.dtype) -> Tensor:
        r"""A new one-dimensional array :obj:`name` of :obj:`size`
        entries."""
        return torch.empty(size, dtype=dtype, device=self.device)

    def column(self, name: str, capacity: int,
               dtype: torch.dtype) -> Column:
        r"""A :class:`Column` named :obj:`name` of at most :obj:`capacity`
        entries."""
        return Column(dtype, self.device)

    def shrink(self, t: Tensor, size: int) -> Tensor:
        r"""The first :obj:`size` entries of :obj:`t`, the rest freed."""
        return t[:size].clone() if size < t.numel() else t

    def release(self, *names: str) -> None:
        r"""Frees the arrays :obj:`names` (nothing to do in memory)."""


def rows_of(counts: Tensor) -> Tensor:
    r"""The row (from :obj:`0`) of every entry of a block whose rows hold
    :obj:`counts` entries."""
    return torch.repeat_interleave(
        torch.arange(counts.numel(), device=counts.device), counts)


def coalesce_rows(r0: int, counts: Tensor, col: Tensor,
                  value: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Merges the duplicate entries of a block of CSR rows (columns sorted
    within rows) and drops self-loops: returns the new entry counts per row,
    the columns and the :obj:`float64` sums of :obj:`value` (or the numbers
    of copies), summed in the order of the entries.

    Args:
        r0 (int): The block's first row.
        counts (torch.Tensor): The entries of every row of the block.
        col (torch.Tensor): The columns.
        value (torch.Tensor, optional): The entries' values.
    """
    rows = rows_of(counts)
    keep = rows + r0 != col
    if not bool(keep.all()):
        rows, col = rows[keep], col[keep]
        value = value[keep] if value is not None else None
    del keep
    start = torch.ones_like(rows, dtype=torch.bool)
    start[1:] = (rows[1:] != rows[:-1]) | (col[1:] != col[:-1])
    group = torch.cumsum(start, 0) - 1
    num = int(group[-1]) + 1 if group.numel() > 0 else 0
    if value is None:
        total = torch.bincount(group, minlength=num).double()
    else:
        total = torch.zeros(num, dtype=torch.float64, device=col.device)
        total.scatter_add_(0, group, value.double())
    rows, col = rows[start], col[start]
    return torch.bincount(rows, minlength=counts.numel()), col, total


def relative_weight(total: Tensor, max_value: float) -> Tensor:
    r"""The :obj:`float64` weights :obj:`total` divided by :obj:`max_value`
    (their maximum over the graph), as :obj:`float32`: label propagation
    only uses ratios of weights, and sums of weights in :obj:`(0, 1]` over
    at most all edges cannot overflow in coarsening; a positive weight too
    small for :obj:`float32` becomes its smallest normal value, never zero.
    Multiplying all weights by a power of two leaves the result unchanged,
    bit for bit."""
    if max_value > 0:
        total = total / max_value
    out = total.float()
    tiny = torch.finfo(torch.float32).tiny
    return torch.where((total > 0) & (out < tiny), torch.full_like(out, tiny),
                       out)


def drop_zeros(counts: Tensor, col: Tensor,
               weight: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Drops the entries of weight zero from a block of rows."""
    keep = weight > 0
    if bool(keep.all()):
        return counts, col, weight
    rows = rows_of(counts)[keep]
    return (torch.bincount(rows, minlength=counts.numel()), col[keep],
            weight[keep])


def undirected_csr(edge_index: Tensor, edge_weight: Optional[Tensor],
                   num_nodes: int) -> CSRBlocks:
    r"""The graph LPMetis partitions, from an edge list: self-loops
    dropped, the copies of an edge (in either direction) merged with their
    weights summed, then divided by the largest (:func:`relative_weight`);
    edges of weight zero dropped; as a symmetric CSR. A symmetric CSR store
    with the same edges gives the same graph (its weights are then all
    halved before :func:`relative_weight`, which cancels)."""
    row, col = edge_index[0], edge_index[1]
    mask = row != col
    key = torch.minimum(row, col) * num_nodes
    key += torch.maximum(row, col)
    if not bool(mask.all()):
        key = key[mask]
        edge_weight = edge_weight[mask] if edge_weight is not None else None
    del mask, row, col
    if edge_weight is None:  # Unweighted: the weight is the number of copies.
        key, total = torch.unique(key, sorted=True, return_counts=True)
        total = total.double()
    else:
        key, total = sum_sorted(key, edge_weight)
    max_value = float(total.max()) if total.numel() > 0 else 0.0
    weight = relative_weight(total, max_value)
    del total
    keep = weight > 0
    if not bool(keep.all()):
        key, weight = key[keep], weight[keep]
    del keep
    return symmetric_csr(key // num_nodes, key % num_nodes, weight,
                         num_nodes)


def sum_sorted(key: Tensor, value: Tensor,
               double: bool = True) -> Tuple[Tensor, Tensor]:
    r"""The distinct values of :obj:`key` (sorted) and the sums of
    :obj:`value` per key (in :obj:`float64` if :obj:`double`), every sum in
    the order of the entries (one stable sort)."""
    key, perm = torch.sort(key, stable=True)
    value = value[perm]
    if double:
        value = value.double()
    del perm
    start = torch.ones_like(key, dtype=torch.bool)
    start[1:] = key[1:] != key[:-1]
    group = torch.cumsum(start, 0) - 1
    key = key[start]
    del start
    total = value.new_zeros(key.numel()).scatter_add_(0, group, value)
    return key, total


def symmetric_csr(lo: Tensor, hi: Tensor, weight: Tensor, num_nodes: int,
                  chunk_edges: Optional[int] = None) -> CSRBlocks:
    r"""The symmetric CSR of the undirected edges :obj:`(lo, hi)`,
    :obj:`lo < hi`, sorted by :obj:`(lo, hi)`: row :obj:`r` holds the
    entries :obj:`r -> lo` of the edges with :obj:`hi = r` (smaller
    columns, put in order by one stable sort by :obj:`hi`), then those
    :obj:`r -> hi` of the edges with :obj:`lo = r` (in order already)."""
    below = torch.bincount(hi, minlength=num_nodes)
    above = torch.bincount(lo, minlength=num_nodes)
    rowptr = below.new_zeros(num_nodes + 1)
    torch.cumsum(below + above, 0, out=rowptr[1:])
    total = 2 * lo.numel()
    col = lo.new_empty(total)
    out = weight.new_empty(total)
    # Entries r -> hi: after the row's `below` entries, in the given order.
    first = torch.zeros_like(rowptr)
    torch.cumsum(above, 0, out=first[1:])
    pos = torch.arange(lo.numel(), device=lo.device)
    pos += (rowptr[:-1] + below - first[:-1])[lo]
    col[pos] = hi
    out[pos] = weight
    # Entries r -> lo: at the row's start, ordered by one stable sort.
    key, perm = torch.sort(hi, stable=True)
    torch.cumsum(below, 0, out=first[1:])
    pos = torch.arange(lo.numel(), device=lo.device)
    pos += (rowptr[:-1] - first[:-1])[key]
    col[pos] = lo[perm]
    out[pos] = weight[perm]
    return CSRBlocks(rowptr, col, out, chunk_edges)


def degree_rank(degree: Tensor) -> Tensor:
    r"""The rank of every node by decreasing :obj:`degree` (ties by id)."""
    rank = torch.empty_like(degree)
    rank[torch.argsort(degree, descending=True, stable=True)] = torch.arange(
        degree.numel(), device=degree.device)
    return rank


def prune_block(r0: int, counts: Tensor, col: Tensor, weight: Tensor,
                merged: Tensor, p_ratio: float, p_b: float,
                key: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The edges a block of rows keeps (LPMetis' pruning, per row): an
    entry :obj:`v -> w` stays if its relative weight
    :math:`e_{vw} / \sum_m e_{vm}` is at least :obj:`p_ratio`, if its draw
    (:func:`hash_uniform` of :obj:`(v, w)`) is under :obj:`p_b`, or if it is
    the strongest entry of its row (the one with the smallest hash among
    ties), so that no node is cut off from merging. Returns the kept
    entries' counts per row, columns and scores :math:`e_{vw} / s_w`
    (:obj:`s` = :obj:`merged`)."""
    rows = rows_of(counts)
    degree = weight.new_zeros(counts.numel()).scatter_add_(0, rows, weight)
    rel = weight / degree[rows]
    del degree
    strongest = weight.new_zeros(counts.numel())
    strongest.scatter_reduce_(0, rows, rel, 'amax')
    bits = hash_bits(key, rows + r0, col)
    tie = rel == strongest[rows]
    del strongest
    first = torch.full_like(counts, torch.iinfo(torch.int64).max)
    first.scatter_reduce_(0, rows[tie], bits[tie], 'amin')
    keep = (rel >= p_ratio) | uniform_below(bits, p_b)
    keep |= tie & (bits == first[rows])
    del rel, bits, tie, first
    col = col[keep]
    score = weight[keep] / merged[col]
    return torch.bincount(rows[keep], minlength=counts.numel()), col, score


def sparse_sums(rows: Tensor, lab: Tensor, s: Tensor, num_rows: int,
                num_labels: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Sums :obj:`s` per (row, label) via one stable sort, so every sum
    runs in the order of the entries; returns the groups' rows, labels and
    sums."""
    key, total = sum_sorted(rows * num_labels + lab, s, double=False)
    return key // num_labels, key % num_labels, total


DENSE_BLOCK = 1 << 24
r"""Entries of one dense block of sums in :func:`dense_sums`."""

DENSE_RATIO = 8
r"""The largest size of :func:`dense_sums`' buffers (rows times labels) per
entry summed; past it, :func:`propose_block` sorts instead."""


def dense_sums(rows: Tensor, lab: Tensor, s: Tensor, num_rows: int,
               num_labels: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""As :func:`sparse_sums`, for few labels and :obj:`rows` in order:
    the sums of a range of rows go into a dense [rows x labels] buffer
    (at most :obj:`DENSE_BLOCK` entries), with no sort (a loop over ranges
    of rows, never over rows)."""
    step = max(1, DENSE_BLOCK // num_labels)
    bounds = list(range(0, num_rows, step)) + [num_rows]
    ends = torch.searchsorted(
        rows, torch.tensor(bounds, device=rows.device)).tolist()
    out_rows, out_labs, out_totals = [], [], []
    for i in range(len(bounds) - 1):
        lo, hi = ends[i], ends[i + 1]
        if lo == hi:
            continue
        first = bounds[i]
        dense = s.new_zeros((bounds[i + 1] - first) * num_labels)
        dense.index_add_(0, (rows[lo:hi] - first) * num_labels + lab[lo:hi],
                         s[lo:hi])
        where = dense.nonzero().view(-1)
        out_rows.append(where // num_labels + first)
        out_labs.append(where % num_labels)
        out_totals.append(dense[where])
    if not out_rows:
        empty = rows.new_zeros(0)
        return empty, empty, s.new_zeros(0)
    return torch.cat(out_rows), torch.cat(out_labs), torch.cat(out_totals)


def propose_block(r0: int, counts: Tensor, col: Tensor, score: Tensor,
                  label: Tensor, active: Tensor, size: Tensor,
                  count: Tensor, cap: float, num_labels: int,
                  dense: bool) -> Tensor:
    r"""The label every node of a block of rows wants (:obj:`num_labels`:
    none, it stays): among the labels not full (:obj:`size` plus the
    node's :obj:`count` within :obj:`cap`) or its own, the one of largest
    total :obj:`score` over its entries, its own label on ties, else the
    smallest. Only :obj:`active` nodes (the block's slice) move. Every
    value depends on the node's own row only."""
    num_rows = counts.numel()
    rows = rows_of(counts)
    mask = active[rows]
    rows, lab, s = rows[mask], label[col[mask]], score[mask]
    del mask
    target = torch.full((num_rows, ), num_labels, dtype=torch.long,
                        device=col.device)
    if rows.numel() == 0:
        return target
    # A dense buffer costs rows x labels; past a few times the entries,
    # the sort of `sparse_sums` is cheaper (both sum in the order of the
    # entries, so they give the same sums, bit for bit):
    dense = dense and num_rows * num_labels <= DENSE_RATIO * rows.numel()
    sums = dense_sums if dense else sparse_sums
    node, lab, total = sums(rows, lab, s, num_rows, num_labels)
    del rows, s
    own = label[node + r0]
    stay = lab == own
    allowed = stay | (size[lab] + count[node + r0] <= cap)
    total = torch.where(allowed, total, total.new_full((), -1.0))
    best = total.new_full((num_rows, ), -1.0)
    best.scatter_reduce_(0, node, total, 'amax')
    is_best = allowed & (total == best[node])
    keeps = torch.zeros(num_rows, dtype=torch.bool, device=col.device)
    keeps[node[is_best & stay]] = True
    cand = is_best & ~keeps[node]
    target.scatter_reduce_(0, node[cand], lab[cand], 'amin')
    return target


def admit(target: Tensor, label: Tensor, count: Tensor, size: Tensor,
          cap: float, num_labels: int, priority: Optional[Tensor]) -> int:
    r"""Moves the nodes that want another label (:obj:`target`), in
    place: each label admits its movers in the order of :obj:`priority`
    (node ids if :obj:`None`) while its total :obj:`count` stays within
    :obj:`cap`. Returns the number of nodes that moved."""
    movers = (target < num_labels).nonzero().view(-1)
    if movers.numel() == 0:
        return 0
    dest = target[movers]
    if priority is None:
        order = torch.argsort(dest, stable=True)
    else:
        order = torch.argsort(dest * target.numel() + priority[movers])
    dest, movers = dest[order], movers[order]
    cum = torch.cumsum(count[movers], 0)
    first = torch.ones_like(dest, dtype=torch.bool)
    first[1:] = dest[1:] != dest[:-1]
    offset = (cum - count[movers])[first]
    within = cum - offset[torch.cumsum(first, 0) - 1]
    ok = size[dest] + within <= cap
    label[movers[ok]] = dest[ok]
    return int(ok.sum())


def label_rounds(graph, label: Tensor, count: Tensor, cap: float,
                 num_labels: int, iterations: int, key: int,
                 priority: Optional[Tensor], dense: bool,
                 bar=None) -> Tensor:
    r"""Label updates over the blocks of :obj:`graph` (a
    :class:`CSRBlocks`, weights are scores), in place on :obj:`label`:
    every iteration, a random half of the nodes (drawn by
    :func:`hash_uniform` per node) proposes labels block by block
    (:func:`propose_block`), then the labels admit them
    (:func:`admit`)."""
    n = label.numel()
    nodes = torch.arange(n, device=label.device)
    for it in range(iterations):
        active = uniform_below(hash_bits(stream_key(key, it), nodes), 0.5)
        size = count.new_zeros(num_labels).scatter_add_(0, label, count)
        target = torch.empty_like(label)
        for r0, counts, col, score in graph.blocks():
            r1 = r0 + counts.numel()
            target[r0:r1] = propose_block(r0, counts, col, score, label,
                                          active[r0:r1], size, count, cap,
                                          num_labels, dense)
            if bar is not None:
                bar.update(r1 - r0)
        admit(target, label, count, size, cap, num_labels, priority)
    return label


def prune(graph, merged: Tensor, p_ratio: float, p_b: float, key: int,
          ws: Workspace, name: str, chunk_edges: Optional[int],
          bar=None) -> CSRBlocks:
    r"""The pruned graph of :obj:`graph` (:func:`prune_block` on every
    block), its arrays in :obj:`ws`."""
    n = graph.num_nodes
    cols = ws.column(f'{name}_col', graph.num_entries, torch.long)
    scores = ws.column(f'{name}_score', graph.num_entries, torch.float32)
    counts = merged.new_zeros(n, dtype=torch.long)
    for r0, c, col, weight in graph.blocks():
        kept, col, score = prune_block(r0, c, col, weight, merged, p_ratio,
                                       p_b, key)
        counts[r0:r0 + c.numel()] = kept
        cols.append(col)
        scores.append(score)
        if bar is not None:
            bar.update(c.numel())
    rowptr = counts.new_zeros(n + 1)
    torch.cumsum(counts, 0, out=rowptr[1:])
    return CSRBlocks(rowptr, cols.finish(), scores.finish(), chunk_edges)


def contract(graph, inv: Tensor, num_coarse: int, ws: Workspace,
             name: str, chunk_edges: Optional[int], bar=None) -> CSRBlocks:
    r"""The graph of the clusters :obj:`inv` (node -> cluster): an entry
    per pair of adjacent clusters :obj:`(U, V)`, in both directions, with
    the sum of the weights of the entries :obj:`u -> v`, :obj:`u` in
    :obj:`U`, :obj:`v` in :obj:`V`, :obj:`U < V` (each edge once), summed in
    the order of :obj:`graph`'s entries, so both directions get the same
    sum whatever the blocks.

    In a streaming :obj:`ws`, it is built as
    :func:`~torch_autoscale.store.ingest_edge_list` builds a CSR, with
    memory bounded by the number of nodes and a range of rows: a pass
    counts the entries of every cluster's row, a second appends every entry
    to the temporary file of its range of rows
    (:class:`~torch_autoscale.store.buckets.RowBuckets`, in the order of
    the entries), then every range is sorted and merged in memory (stable
    sorts, so every sum keeps that order) and written out. In memory, one
    stable sort of the whole list does the same."""
    device = inv.device

    def upper(r0: int, c: Tensor, col: Tensor, weight: Tensor):
        row, col = inv[rows_of(c) + r0], inv[col]
        mask = row < col
        return row[mask], col[mask], weight[mask]

    if not ws.streaming:  # In memory: one stable sort of the list.
        keys, weights = [], []
        for r0, c, col, weight in graph.blocks():
            row, col, weight = upper(r0, c, col, weight)
            keys.append(row * num_coarse + col)
            weights.append(weight)
            if bar is not None:
                bar.update(2 * c.numel())
        del row, col, weight
        key, total = sum_sorted(torch.cat(keys), torch.cat(weights))
        del keys, weights
        return symmetric_csr(key // num_coarse, key % num_coarse,
                             total.float(), num_coarse, chunk_edges)

    from torch_autoscale.store import buckets
    count = torch.zeros(num_coarse, dtype=torch.long, device=device)
    for r0, c, col, weight in graph.blocks():
        row, col, _ = upper(r0, c, col, weight)
        count += torch.bincount(row, minlength=num_coarse)
        count += torch.bincount(col, minlength=num_coarse)
        if bar is not None:
            bar.update(c.numel())
    rowptr = torch.zeros(num_coarse + 1, dtype=torch.long, device=device)
    torch.cumsum(count, 0, out=rowptr[1:])
    del count
    # Every entry to the temporary file of its range of rows (sequential
    # writes, in the order of the entries), then each range summed in
    # memory and written out:
    sorter = buckets.RowBuckets(
        ws.folder, buckets.bucket_bounds(rowptr, buckets.BUCKET_ENTRIES),
        {'col': (torch.long, ()), 'weight': (torch.float32, ())})
    try:
        for r0, c, col, weight in graph.blocks():
            row, col, weight = upper(r0, c, col, weight)
            sorter.append(torch.cat([row, col]), col=torch.cat([col, row]),
                          weight=torch.cat([weight, weight]))
            if bar is not None:
                bar.update(c.numel())
        total = int(rowptr[-1])
        out_col = ws.empty(f'{name}_col', total, torch.long)
        out_weight = ws.empty(f'{name}_weight', total, torch.float32)
        new_rowptr = torch.zeros_like(rowptr)
        write = 0
        for r0, r1, rows, values in sorter:
            key, sums = sum_sorted((rows - r0) * num_coarse + values['col'],
                                   values['weight'])
            del rows, values
            out_col[write:write + key.numel()] = key % num_coarse
            out_weight[write:write + key.numel()] = sums.float()
            new_rowptr[r0 + 1:r1 + 1] = write + torch.cumsum(
                torch.bincount(key // num_coarse, minlength=r1 - r0), 0)
            write += key.numel()
    finally:
        sorter.close()
    return CSRBlocks(new_rowptr, ws.shrink(out_col, write),
                     ws.shrink(out_weight, write), chunk_edges)


def pair_tie(row: Tensor, col: Tensor) -> Tensor:
    r"""The tie-break of the entries :obj:`(row, col)` among equal weights
    (see :func:`heaviest_entries`): a hash of the unordered pair, so that an
    entry and its reverse get the same, and no node id is favoured."""
    return hash_bits(stream_key(0, TIE), torch.minimum(row, col),
                     torch.maximum(row, col))


def at_or_above(weight: Tensor, tie: Tensor, other: Tensor, node: Tensor,
                threshold: Tuple[Tensor, Tensor, Tensor]) -> Tensor:
    r"""Whether the entries :obj:`(node, other)` of weights :obj:`weight`
    and tie-breaks :obj:`tie` rank at or above the :obj:`threshold` entry
    of :obj:`node`'s row, in the order of :func:`heaviest_entries`."""
    t_weight, t_tie, t_col = (t[node] for t in threshold)
    return (weight > t_weight) | ((weight == t_weight) & (
        (tie > t_tie) | ((tie == t_tie) & (other <= t_col))))


MIN_ENTRIES_PER_NODE: int = 3
r"""Below this many heaviest entries per coarse node, LPMetis warns: a
coarse graph kept this sparse falls apart into pieces that METIS packs
into parts at random."""


def entries_per_node(max_entries: int, num_nodes: int) -> int:
    r"""The heaviest entries every coarse node keeps when the coarse graph
    of :obj:`num_nodes` nodes has more than :obj:`max_entries` (see
    :func:`heaviest_entries`), at least one; logs a warning below
    :obj:`MIN_ENTRIES_PER_NODE`. Both engines decide through here."""
    k = max(1, max_entries // (2 * num_nodes))
    if k < MIN_ENTRIES_PER_NODE:
        log.warning("LPMetis: 'max_coarse_entries' (%d) leaves %d entries "
                    "per node of the %d-node coarse graph; parts may join "
                    "far-apart pieces of the graph. Raise it to %d or more "
                    "(METIS' memory grows with it) or coarsen more "
                    "('rounds')", max_entries, k, num_nodes,
                    2 * MIN_ENTRIES_PER_NODE * num_nodes)
    return k


def heaviest_entries(graph, max_entries: Optional[int]
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The CSR arrays of :obj:`graph` in memory, with at most
    :obj:`max_entries` entries (or two per node, if there are more nodes
    than that): if it has more, the union of every node's :math:`k =
    \max(1, \lfloor \text{max_entries} / (2 n) \rfloor)` heaviest entries,
    ranked by weight, then a hash of the pair (:func:`pair_tie`), then the
    column. An entry is kept if it is among the :math:`k` heaviest of
    either end; a weight and its reverse entry's are equal, so the graph
    stays symmetric.

    Every node keeps its strongest links, so the graph METIS splits keeps
    the structure of the whole graph: a single weight threshold (the
    heaviest entries overall) drops all entries of nodes whose edges are
    all light, and METIS places such isolated nodes anywhere.

    Two passes over the blocks; memory: the kept entries and three values
    per node (the :math:`k`-th entry of its row)."""
    if max_entries is None or graph.num_entries <= max_entries:
        return graph.load()
    n = graph.num_nodes
    k = entries_per_node(max_entries, n)
    threshold = None
    for r0, c, col, weight in graph.blocks():
        if threshold is None:  # Rows of at most k entries keep them all:
            threshold = (torch.full((n, ), -math.inf, device=col.device),
                         col.new_zeros(n), col.new_zeros(n))
        local = rows_of(c)
        tie = pair_tie(r0 + local, col)
        # Entries by row, then weight, tie (both decreasing) and column
        # (increasing, the order within rows), by stable sorts:
        perm = torch.sort(tie, descending=True, stable=True)[1]
        perm = perm[torch.sort(weight[perm], descending=True,
                               stable=True)[1]]
        perm = perm[torch.sort(local[perm], stable=True)[1]]
        rank = torch.arange(perm.numel(), device=perm.device) - (
            torch.cumsum(c, 0) - c)[local[perm]]
        kth = perm[rank == k - 1]
        for t, value in zip(threshold, (weight, tie, col)):
            t[r0 + local[kth]] = value[kth].to(t.dtype)
    counts, cols, weights = [], [], []
    for r0, c, col, weight in graph.blocks():
        row = r0 + rows_of(c)
        tie = pair_tie(row, col)
        keep = (at_or_above(weight, tie, col, row, threshold)
                | at_or_above(weight, tie, row, col, threshold))
        counts.append(torch.bincount(row[keep] - r0, minlength=c.numel()))
        cols.append(col[keep])
        weights.append(weight[keep])
    rowptr = torch.zeros(n + 1, dtype=torch.long, device=counts[0].device)
    torch.cumsum(torch.cat(counts), 0, out=rowptr[1:])
    col, weight = torch.cat(cols), torch.cat(weights)
    log.info("LPMetis: the coarse graph has %d entries, more than "
             "'max_coarse_entries' (%d); METIS gets %d: the %d heaviest of "
             "every node", graph.num_entries, max_entries, col.numel(), k)
    return rowptr, col, weight


def metis_coarse(graph, count: Tensor, num_parts: int,
                 max_entries: Optional[int] = None
                 ) -> Tuple[Tensor, Tuple[Tensor, Tensor, Tensor]]:
    r"""METIS on the (small) coarse :obj:`graph`, loaded into memory (at
    most :obj:`max_entries` of its entries, every node's heaviest, see
    :func:`heaviest_entries`), with node weights :obj:`count`: the part of
    every coarse node, and the CSR arrays METIS got."""
    rowptr, col, weight = heaviest_entries(graph, max_entries)
    n = count.numel()
    if num_parts == 1:  # METIS needs two parts or more.
        return torch.zeros(n, dtype=torch.long,
                           device=count.device), (rowptr, col, weight)
    # `partition_csr` maps the weights into METIS' range (and balances a
    # graph without edges by `count` without METIS):
    out, _ = partition_csr(rowptr.cpu(), col.cpu(), num_parts, count.cpu(),
                           weight.cpu(), False, n)
    return out.to(count.device), (rowptr, col, weight)


def run_lpmetis(graph, degree: Tensor, num_parts: int, p_ratio: float,
                p_b: float, rounds: int, seed: int, iterations: int,
                max_cluster_size: int, refine: int, ws: Workspace,
                chunk_edges: Optional[int], verbose: bool = True,
                progress: bool = False,
                max_coarse_entries: Optional[int] = None,
                return_coarse: bool = False
                ) -> Tuple[Tensor, Optional[CoarseGraph]]:
    r"""LPMetis on :obj:`graph` (see :func:`lpmetis`), whichever way its
    blocks are read: the part of every node and, with
    :obj:`return_coarse`, the :class:`CoarseGraph` (else :obj:`None`).
    :obj:`degree` is the number of neighbours of every node; the in-memory
    and the streaming paths share this function and every block
    operation, so they give the same partition."""
    from tqdm.auto import tqdm
    t = time.perf_counter()
    num_nodes = graph.num_nodes
    device = degree.device
    rank = degree_rank(degree)
    level0 = graph
    n = num_nodes
    mapping: Optional[Tensor] = None  # Original node -> current node.
    merged = torch.ones(n, device=device)  # Previous-level nodes per node.
    count = torch.ones(n, dtype=torch.long, device=device)  # Original ones.
    label: Tensor = rank.clone()  # Labels of the first level: ranks.
    priority: Optional[Tensor] = rank
    for r in range(rounds):
        bar = tqdm(total=n * (iterations + 3), unit=' nodes',
                   unit_scale=True, desc=f'LPMetis round {r + 1}',
                   disable=not progress, leave=False)
        key = stream_key(seed, r)
        pruned = prune(graph, merged, p_ratio, p_b, stream_key(key, PRUNE),
                       ws, f'pruned{r}', chunk_edges, bar)
        label_rounds(pruned, label, count, max_cluster_size, n, iterations,
                     stream_key(key, ACTIVE), priority, False, bar)
        ws.release(f'pruned{r}_col', f'pruned{r}_score')
        del pruned
        uniq, inv = torch.unique(label, return_inverse=True)
        if uniq.numel() == n:  # Nothing merged: coarsening is done.
            bar.close()
            break
        n = uniq.numel()
        merged = torch.bincount(inv, minlength=n).to(merged.dtype)
        count = count.new_zeros(n).scatter_add_(0, inv, count)
        mapping = inv if mapping is None else inv[mapping]
        coarse = contract(graph, inv, n, ws, f'coarse{r}', chunk_edges, bar)
        if r > 0:
            ws.release(f'coarse{r - 1}_col', f'coarse{r - 1}_weight')
        graph = coarse
        bar.close()
        label, priority = torch.arange(n, device=device), None
        if verbose:
            log.info("LPMetis round %d: %d nodes, %d edges (%.2fs)", r + 1, n,
                     graph.num_entries // 2, time.perf_counter() - t)

    # Without edges left, this balances cluster sizes only:
    coarse, csr = metis_coarse(graph, count, num_parts, max_coarse_entries)
    kept: Optional[CoarseGraph] = None
    if return_coarse:  # Otherwise, its memory is free for the refinement.
        kept = CoarseGraph(
            torch.arange(num_nodes, device=device) if mapping is None else
            mapping, csr[0].to(device), csr[1].to(device).long(),
            csr[2].to(device).float(), count, coarse.clone())
    del csr
    if graph is not level0:
        ws.release(*(f'coarse{r}_{a}' for r in range(rounds)
                     for a in ('col', 'weight')))
    del graph
    cluster = coarse if mapping is None else coarse[mapping]
    if refine > 0 and mapping is not None:
        cap = IMBALANCE * num_nodes / num_parts
        cap = max(cap, float(torch.bincount(cluster).max()))
        bar = tqdm(total=num_nodes * refine, unit=' nodes', unit_scale=True,
                   desc='LPMetis refinement', disable=not progress,
                   leave=False)
        label_rounds(level0, cluster, torch.ones_like(cluster), cap,
                     num_parts, refine, stream_key(seed, REFINE), rank,
                     True, bar)
        bar.close()
    cluster = fill_empty_parts(cluster, num_parts)
    if verbose:
        log.info("LPMetis split %d nodes into %d parts in %.2fs (coarse "
                 "graph: %d nodes)", num_nodes, num_parts,
                 time.perf_counter() - t, n)
    return cluster, kept


def fill_empty_parts(cluster: Tensor, num_parts: int) -> Tensor:
    r"""Makes every part non-empty by halving the largest part for every
    empty one (a loop over parts, never over nodes)."""
    sizes = torch.bincount(cluster, minlength=num_parts)
    for empty in (sizes == 0).nonzero().view(-1).tolist():
        largest = int(sizes.argmax())
        members = (cluster == largest).nonzero().view(-1)
        moved = members[members.numel() // 2:]
        cluster[moved] = empty
        sizes[largest] -= moved.numel()
        sizes[empty] = moved.numel()
    return cluster


def check_lpmetis_args(num_nodes: int, num_parts: int, p_ratio: float,
                       p_b: float, rounds: int, iterations: int,
                       max_cluster_size: Optional[int], refine: int,
                       seed: Optional[int]) -> Tuple[int, ...]:
    r"""Validates the arguments of :func:`lpmetis` (the message names the
    argument); returns :obj:`(num_parts, rounds, iterations,
    max_cluster_size, refine, seed)` with the defaults filled in (a
    :obj:`None` seed drawn from PyTorch's global generator)."""
    num_parts = check_int(num_parts, 'num_parts', 1)
    if num_parts > num_nodes:
        raise ValueError(f"'num_parts' ({num_parts}) must not exceed the "
                         f"number of nodes ({num_nodes}); pass "
                         f"'num_parts <= {num_nodes}'")
    for name, value in (('p_ratio', p_ratio), ('p_b', p_b)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, (bool, str)) or not 0.0 <= number <= 1.0:
            raise ValueError(f"'{name}' is a probability and must lie in "
                             f"[0, 1] (got {value})")
    rounds = check_int(rounds, 'rounds', 0)
    iterations = check_int(iterations, 'iterations', 1)
    if max_cluster_size is None:
        max_cluster_size = math.ceil(num_nodes / (32 * num_parts))
    max_cluster_size = check_int(max_cluster_size, 'max_cluster_size', 1)
    refine = check_int(refine, 'refine', 0)
    seed = check_seed(seed)
    if seed is None:
        seed = int(torch.randint(2**62, (1, )))
    return num_parts, rounds, iterations, max_cluster_size, refine, seed
