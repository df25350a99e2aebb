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
"""
import logging
import math
import time
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.index import index2ptr

from .backend import partition_csr
from .validation import check_int, check_seed, check_weight, to_edge_index

log = logging.getLogger(__name__)

EdgeLists = List[Tuple[Tensor, Tensor, Tensor]]

IMBALANCE: float = 1.03
r"""The largest part size over the mean that the refinement allows (METIS'
default tolerance)."""


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
) -> Tensor:
    r"""Partitions a graph into :obj:`num_parts` parts via LPMetis, from the
    `"LPS-GNN: Deploying Graph Neural Networks on Graphs with 100-Billion
    Edges" <https://arxiv.org/abs/2507.14570>`_ paper (see the module
    documentation for the algorithm).

    Nodes are first renumbered by decreasing degree (for cache locality;
    ties in label updates then favour hubs). Label updates are synchronous,
    but in every iteration only a random half
    of the nodes update (the other half keeps its label), which breaks the
    two-colour oscillation of fully synchronous label propagation on
    bipartite pieces; ties go to the node's current label, then to the
    smallest label. A cluster grows only while it holds at most
    :obj:`max_cluster_size` original nodes (moves into a full cluster are
    refused, in node order). By default, that cap is about 3% of a part,
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
            result repeats for a seed. (default: :obj:`None`, drawn from
            PyTorch's global generator)
        iterations (int, optional): Label updates per round (fewer if no
            label changes). (default: :obj:`5`)
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

    Returns:
        torch.Tensor: The part id of every node, an :obj:`int64` tensor of
        shape :obj:`[num_nodes]` on the device of :obj:`edge_index`, in which
        every id of :obj:`[0, num_parts)` occurs.

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
        tensor([260, 258, 258, 248])
    """
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    device = edge_index.device
    edge_weight = check_weight(edge_weight, 'edge_weight',
                               edge_index.size(1),
                               'one entry per edge of `edge_index`')
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
    if num_parts == 1:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)

    if edge_weight is not None:
        edge_weight = _relative_weight(edge_weight)

    if seed is None:
        seed = int(torch.randint(2**62, (1, )))
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    t = time.perf_counter()
    # Every undirected edge once, as (u, v) with u < v: half the memory of a
    # symmetric list, and both directions are read off it where needed.
    row, col, weight = _undirected(edge_index[0], edge_index[1], edge_weight,
                                   num_nodes)
    del edge_index
    if edge_weight is not None:  # Zero-weight edges cannot be cut:
        keep = weight > 0
        if not bool(keep.all()):
            row, col, weight = row[keep], col[keep], weight[keep]
        del keep
    # Node ids by decreasing degree: most edge ends then fall on a few hot
    # nodes, whose labels stay in cache during the random gathers, and label
    # ties go to hubs (on the 50M-edge R-MAT graph of the partition
    # benchmark: 147 s instead of 169 s, edge cut 0.893 instead of 0.918).
    degree = torch.bincount(row, minlength=num_nodes)
    degree += torch.bincount(col, minlength=num_nodes)
    rank = torch.empty_like(degree)
    rank[torch.argsort(degree, descending=True, stable=True)] = torch.arange(
        num_nodes, device=device)
    del degree
    row, col, weight = _undirected(rank[row], rank[col], weight, num_nodes)

    original = (row, col, weight)  # Kept for the refinement.
    n = num_nodes
    mapping: Optional[Tensor] = None  # Original node -> current node.
    merged = torch.ones(n, device=device)  # Previous-level nodes per node.
    count = torch.ones(n, dtype=torch.long, device=device)  # Original ones.
    for r in range(rounds):
        label = _propagate(row, col, weight, n, merged, count,
                           max_cluster_size, float(p_ratio), float(p_b),
                           iterations, gen)
        uniq, inv = torch.unique(label, return_inverse=True)
        if uniq.numel() == n:  # Nothing merged: coarsening is done.
            break
        n = uniq.numel()
        merged = torch.bincount(inv, minlength=n).to(merged.dtype)
        count = count.new_zeros(n).scatter_add_(0, inv, count)
        mapping = inv if mapping is None else inv[mapping]
        row, col, weight = _undirected(inv[row], inv[col], weight, n)
        if verbose:
            log.info("LPMetis round %d: %d nodes, %d edges (%.2fs)", r + 1, n,
                     row.numel(), time.perf_counter() - t)

    # Without edges left, this balances cluster sizes only:
    coarse = _metis_coarse(row, col, weight, count, num_parts)
    del row, col, weight
    cluster = coarse if mapping is None else coarse[mapping]
    if refine > 0 and mapping is not None:
        cap = IMBALANCE * num_nodes / num_parts
        cap = max(cap, float(torch.bincount(cluster).max()))
        cluster = _refine(*original, cluster, num_parts, cap, refine, gen)
    del original
    cluster = _fill_empty_parts(cluster, num_parts)
    cluster = cluster[rank]  # Back to the input's node ids.
    if verbose:
        log.info("LPMetis split %d nodes into %d parts in %.2fs (coarse "
                 "graph: %d nodes)", num_nodes, num_parts,
                 time.perf_counter() - t, n)
    return cluster


def _undirected(row: Tensor, col: Tensor, weight: Optional[Tensor],
                num_nodes: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Every undirected edge once as :obj:`(u, v)` with :obj:`u < v`, sorted,
    self-loops dropped and the weights of all its copies (in either
    direction) summed; unit weights when :obj:`weight` is :obj:`None`."""
    key = torch.minimum(row, col) * num_nodes
    key += torch.maximum(row, col)
    mask = row != col
    if not bool(mask.all()):
        key = key[mask]
        weight = weight[mask] if weight is not None else None
    del mask
    if weight is None:  # Unweighted: the weight is the number of copies.
        key, total = torch.unique(key, sorted=True, return_counts=True)
        total = total.float()
    else:
        key, perm = torch.sort(key)
        weight = weight.float()[perm]
        del perm
        start = torch.ones_like(key, dtype=torch.bool)
        start[1:] = key[1:] != key[:-1]
        group = torch.cumsum(start, 0) - 1
        key = key[start]
        del start
        total = weight.new_zeros(key.numel()).scatter_add_(0, group, weight)
    return key // num_nodes, key % num_nodes, total


def _propagate(row: Tensor, col: Tensor, weight: Tensor, n: int,
               merged: Tensor, count: Tensor, cap: int, p_ratio: float,
               p_b: float, iterations: int, gen: torch.Generator) -> Tensor:
    r"""One round of weighted label propagation on the pruned graph; returns
    the label of every node."""
    device = row.device
    # Edge pruning by relative weight P_ij = e_ij / sum_m e_im, for both
    # directions of every undirected edge (u, v): u -> v and v -> u.
    degree = weight.new_zeros(n).scatter_add_(0, row, weight)
    degree.scatter_add_(0, col, weight)
    directions = [(a, b, torch.rand(row.numel(), generator=gen,
                                    device=device))
                  for a, b in ((row, col), (col, row))]
    # Beyond the paper: every node also keeps one of its strongest edges
    # (the one with the smallest draw among ties), so that no node is cut
    # off from merging; with unit weights, the draws alone would isolate
    # most nodes of degree 3 to 20.
    strongest = weight.new_zeros(n)
    for a, _, _ in directions:
        strongest.scatter_reduce_(0, a, weight / degree[a], 'amax')
    first = weight.new_full((n, ), 2.0)
    for a, _, draw in directions:
        tie = weight / degree[a] == strongest[a]
        first.scatter_reduce_(0, a[tie], draw[tie], 'amin')
    src, dst, score = [], [], []
    for a, b, draw in directions:
        rel = weight / degree[a]
        keep = (rel >= p_ratio) | (draw < p_b)
        keep |= (rel == strongest[a]) & (draw == first[a])
        src.append(a[keep])
        dst.append(b[keep])
        score.append(weight[keep])
    del directions, strongest, first, rel, keep
    row, col = torch.cat(src), torch.cat(dst)
    score = torch.cat(score) / merged[col]  # e_vw / size_w.
    del src, dst

    label = torch.arange(n, device=device)
    for _ in range(iterations):
        _update(row, col, score, label, count, cap, n, gen)
    return label


def _sparse_scores(r: Tensor, c: Tensor, s: Tensor,
                   num_labels: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Sums :obj:`s` per (node :obj:`r`, label :obj:`c`) via one sort;
    returns the groups' nodes, labels and sums, sorted by node."""
    key, perm = torch.sort(r * num_labels + c)
    s = s[perm]
    del perm
    start = torch.ones_like(key, dtype=torch.bool)
    start[1:] = key[1:] != key[:-1]
    group = torch.cumsum(start, 0) - 1
    key = key[start]
    total = s.new_zeros(key.numel()).scatter_add_(0, group, s)
    return key // num_labels, key % num_labels, total


_DENSE_BLOCK = 1 << 24  # Entries of one dense block of sums.


def _dense_scores(lists: EdgeLists, label: Tensor, active: Tensor,
                  num_labels: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""As :func:`_sparse_scores`, for the :obj:`active` nodes, with few
    labels and edge lists :obj:`(src, dst, score)` each sorted by
    :obj:`src`: the sums of a block of nodes go into a dense
    [nodes x labels] buffer, with no sort and no copy of the edge lists (a
    loop over blocks, never over nodes)."""
    n = label.numel()
    block = max(1, _DENSE_BLOCK // num_labels)
    bounds = torch.arange(0, n + block, block, device=label.device)
    ends = [torch.searchsorted(src, bounds).tolist() for src, _, _ in lists]
    nodes, labs, totals = [], [], []
    for i in range(bounds.numel() - 1):
        first = i * block
        dense = None
        for (src, dst, score), end in zip(lists, ends):
            lo, hi = end[i], end[i + 1]
            if lo == hi:
                continue
            if dense is None:
                dense = score.new_zeros(min(block, n - first) * num_labels)
            key = (src[lo:hi] - first) * num_labels + label[dst[lo:hi]]
            dense.index_add_(0, key, score[lo:hi])
        if dense is None:
            continue
        where = dense.nonzero().view(-1)
        node = where // num_labels + first
        keep = active[node]
        where, node = where[keep], node[keep]
        nodes.append(node)
        labs.append(where % num_labels)
        totals.append(dense[where])
    if not nodes:
        empty = label.new_zeros(0)
        return empty, empty, lists[0][2].new_zeros(0)
    return torch.cat(nodes), torch.cat(labs), torch.cat(totals)


def _update(row: Optional[Tensor], col: Optional[Tensor],
            score: Optional[Tensor], label: Tensor, count: Tensor, cap: float,
            num_labels: int, gen: torch.Generator,
            lists: Optional[EdgeLists] = None) -> int:
    r"""One label update, in place: a random half of the nodes take the
    label of largest total :obj:`score` over their edges :obj:`row -> col`
    (staying on ties), into labels that stay within :obj:`cap` total
    :obj:`count`. Returns the number of nodes that moved. With
    :obj:`lists` (edge lists sorted by source; few labels) in place of
    :obj:`row`, :obj:`col` and :obj:`score`, the sums per (node, label) are
    dense instead of sorted."""
    n, device = label.numel(), label.device
    active = torch.rand(n, generator=gen, device=device) < 0.5
    if lists is not None:  # Few labels: dense sums per block of nodes.
        node, lab, total = _dense_scores(lists, label, active, num_labels)
    else:  # Sum of scores per (node, neighbour label), via one sort:
        mask = active[row]
        r, c, s = row[mask], label[col[mask]], score[mask]
        del mask
        if r.numel() == 0:
            return 0
        node, lab, total = _sparse_scores(r, c, s, num_labels)
        del r, c, s
    del active
    if node.numel() == 0:
        return 0

    # Labels that are full accept nobody:
    size = count.new_zeros(num_labels).scatter_add_(0, label, count)
    stay = lab == label[node]
    allowed = stay | (size[lab] + count[node] <= cap)
    total = torch.where(allowed, total, total.new_full((), -1.0))
    best = total.new_full((n, ), -1.0).scatter_reduce_(0, node, total, 'amax')
    is_best = allowed & (total == best[node])
    keeps = torch.zeros(n, dtype=torch.bool, device=device)
    keeps[node[is_best & stay]] = True
    cand = is_best & ~keeps[node]
    target = torch.full((n, ), num_labels, dtype=torch.long, device=device)
    target.scatter_reduce_(0, node[cand], lab[cand], 'amin')
    movers = (target < num_labels).nonzero().view(-1)
    if movers.numel() == 0:
        return 0
    # Admit movers into each label in node order while it has room:
    dest, order = torch.sort(target[movers], stable=True)
    movers = movers[order]
    cum = torch.cumsum(count[movers], 0)
    first = torch.ones_like(dest, dtype=torch.bool)
    first[1:] = dest[1:] != dest[:-1]
    offset = (cum - count[movers])[first]
    within = cum - offset[torch.cumsum(first, 0) - 1]
    admit = size[dest] + within <= cap
    label[movers[admit]] = dest[admit]
    return int(admit.sum())


def _refine(row: Tensor, col: Tensor, weight: Tensor, cluster: Tensor,
            num_parts: int, cap: float, iterations: int,
            gen: torch.Generator) -> Tensor:
    r"""Moves nodes of the original graph to the part most of their edge
    weight leads to, while parts stay within :obj:`cap` nodes (label
    propagation with parts as labels): the boundary refinement METIS does
    on every level of its own hierarchy, for the levels LPMetis skipped."""
    # Both directions, each sorted by its source (u -> v is already), with
    # no concatenated copy:
    col_sorted, perm = torch.sort(col, stable=True)
    lists = [(row, col, weight), (col_sorted, row[perm], weight[perm])]
    del perm
    count = torch.ones_like(cluster)
    for _ in range(iterations):
        _update(None, None, None, cluster, count, cap, num_parts, gen,
                lists=lists)
    return cluster


def _metis_coarse(row: Tensor, col: Tensor, weight: Tensor, count: Tensor,
                  num_parts: int) -> Tensor:
    r"""METIS on the coarse graph, handed over as CSR built straight from
    the sorted undirected edge list (:func:`metis` would symmetrize and
    coalesce it again, at several times the memory of the list)."""
    n = count.numel()
    # Both directions, in row order: u -> v is sorted by u already, so one
    # stable sort of the rows of the concatenation puts v -> u in place.
    rows = torch.cat([row, col])
    rows, perm = torch.sort(rows, stable=True)
    rowptr = index2ptr(rows, size=n)
    del rows
    cols = torch.cat([col, row])[perm]
    weights = torch.cat([weight, weight])[perm]
    del perm
    # `partition_csr` maps the weights into METIS' range (and balances a
    # graph without edges by `count` without METIS):
    out, _ = partition_csr(rowptr.cpu(), cols.cpu(), num_parts, count.cpu(),
                           weights.cpu(), False, n)
    return out.to(row.device)


def _relative_weight(weight: Tensor) -> Tensor:
    r"""Edge weights divided by the largest one (in :obj:`float64`), as
    :obj:`float32`. Label propagation only uses ratios of weights, and sums
    of weights in :obj:`(0, 1]` over at most all edges cannot overflow in
    coarsening; a positive weight too small for :obj:`float32` becomes its
    smallest normal value, never zero."""
    if weight.numel() == 0:
        return weight.float()
    weight = weight.double()
    max_value = float(weight.max())
    if max_value > 0:
        weight = weight / max_value
    out = weight.float()
    tiny = torch.finfo(torch.float32).tiny
    return torch.where((weight > 0) & (out < tiny), torch.full_like(out, tiny),
                       out)


def _fill_empty_parts(cluster: Tensor, num_parts: int) -> Tensor:
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
