r"""How good a partition is: edge cut, balance and part-size spread, the
metrics of the `"LPS-GNN" <https://arxiv.org/abs/2507.14570>`_ paper."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor

from torch_autoscale.utils.checks import check_int

from .validation import check_weight, to_edge_index


@dataclass
class PartitionReport:
    r"""The quality of a partition (see :func:`partition_report`).

    Attributes:
        num_nodes (int): The number of nodes.
        num_edges (int): The number of undirected edges (self-loops
            excluded).
        num_parts (int): The number of parts :math:`K`.
        sizes (torch.Tensor): The number of nodes of every part.
        cut_edges (float): The number (or total weight) of undirected edges
            whose end nodes lie in different parts.
        edge_cut (float): EC, the cut fraction of all edges (or of the total
            weight).
        balance (float): BAL, the largest number of edges of a part over
            :math:`|E| / K` (a part's edges: those with an end node in it,
            counted once per end node, so that they sum to :math:`2|E|`);
            :obj:`1.0` is perfect balance.
        size_std (float): STD, the standard deviation of the part sizes
            around :math:`|V| / K`, with :math:`K - 1` degrees of freedom.
    """
    num_nodes: int
    num_edges: int
    num_parts: int
    sizes: Tensor
    cut_edges: float
    edge_cut: float
    balance: float
    size_std: float

    @property
    def num_empty(self) -> int:
        r"""The number of empty parts."""
        return int((self.sizes == 0).sum())

    @property
    def size_ratio(self) -> float:
        r"""The largest part size over the mean part size."""
        return float(self.sizes.max()) * self.num_parts / self.num_nodes

    def as_dict(self) -> dict:
        r"""The report as plain Python values (for JSON)."""
        return dict(num_nodes=self.num_nodes, num_edges=self.num_edges,
                    num_parts=self.num_parts, cut_edges=self.cut_edges,
                    edge_cut=self.edge_cut, balance=self.balance,
                    size_std=self.size_std, size_ratio=self.size_ratio,
                    num_empty=self.num_empty,
                    min_size=int(self.sizes.min()),
                    max_size=int(self.sizes.max()))

    def __str__(self) -> str:
        return (f"{self.num_parts} parts of {self.num_nodes} nodes and "
                f"{self.num_edges} edges: edge cut {self.edge_cut:.4f}, "
                f"balance {self.balance:.3f}, size std {self.size_std:.1f} "
                f"(sizes {int(self.sizes.min())}-{int(self.sizes.max())}, "
                f"{self.num_empty} empty)")


def _check_cluster(cluster: Tensor,
                   num_parts: Optional[int]) -> Tuple[Tensor, int]:
    r"""Validates part ids and returns them as :obj:`int64`, together with
    the number of parts (the largest id plus one if :obj:`num_parts` is
    :obj:`None`)."""
    if not isinstance(cluster, Tensor) or cluster.dim() != 1 or (
            cluster.layout != torch.strided):
        raise ValueError("'cluster' must be a one-dimensional tensor holding "
                         "the part id of every node")
    if (cluster.is_floating_point() or cluster.is_complex()
            or cluster.dtype == torch.bool):
        raise ValueError(f"'cluster' must hold integer part ids (got dtype "
                         f"{cluster.dtype})")
    if num_parts is not None:
        num_parts = check_int(num_parts, 'num_parts', 1, optional=True)
    cluster = cluster.long()
    if cluster.numel() > 0 and int(cluster.min()) < 0:
        raise ValueError(f"'cluster' must hold non-negative part ids (got "
                         f"{int(cluster.min())})")
    max_part = int(cluster.max()) + 1 if cluster.numel() > 0 else 0
    if num_parts is None:
        num_parts = max_part
    elif num_parts < max_part:
        raise ValueError(f"'cluster' holds part id {max_part - 1}, which "
                         f"does not fit 'num_parts={num_parts}' (ids lie in "
                         f"[0, num_parts)); pass 'num_parts >= {max_part}' "
                         f"or 'num_parts=None'")
    return cluster, num_parts


def _prepare(edge_index: Tensor, cluster: Tensor,
             num_parts: Optional[int]) -> Tuple[Tensor, Tensor, int]:
    cluster, num_parts = _check_cluster(cluster, num_parts)
    num_nodes = cluster.numel()
    if num_nodes == 0:
        raise ValueError("'cluster' is empty: there is no partition to "
                         "measure on a graph without nodes; pass the part "
                         "id of every node of a graph with at least one "
                         "node")
    # The graph is measured on the nodes `cluster` holds; say so, rather
    # than ask for a 'num_nodes' the metrics do not take:
    needed = _graph_nodes(edge_index)
    if needed is not None:
        count, exact = needed
        if count > num_nodes or (exact and count != num_nodes):
            what = (f"the sparse 'edge_index' is a {count} x {count} "
                    f"adjacency matrix" if exact else
                    f"'edge_index' holds node index {count - 1}")
            raise ValueError(
                f"'cluster' has {num_nodes} entries but {what}; pass one "
                f"part id per node of the graph ('cluster' of length "
                f"{count}{'' if exact else ' or more'})")
    edge_index, _ = to_edge_index(edge_index, num_nodes)
    return edge_index, cluster.to(edge_index.device), num_parts


def _graph_nodes(edge_index) -> Optional[Tuple[int, bool]]:
    r"""The number of nodes :obj:`edge_index` needs and whether it is exact
    (a sparse matrix) or a lower bound (a :obj:`[2, E]` list), where it can
    be read; :obj:`None` leaves malformed input to :func:`to_edge_index`."""
    if isinstance(edge_index, SparseTensor):
        size = tuple(edge_index.sizes())
        return (size[0], True) if size[0] == size[1] else None
    if not isinstance(edge_index, Tensor):
        return None
    if edge_index.layout != torch.strided:
        size = tuple(edge_index.shape)
        ok = len(size) == 2 and size[0] == size[1]
        return (size[0], True) if ok else None
    if (edge_index.dim() != 2 or edge_index.size(0) != 2
            or edge_index.numel() == 0 or edge_index.is_floating_point()
            or edge_index.is_complex() or edge_index.dtype == torch.bool):
        return None
    return int(edge_index.max()) + 1, False


def part_sizes(cluster: Tensor, num_parts: Optional[int] = None) -> Tensor:
    r"""The number of nodes of every part.

    Args:
        cluster (torch.Tensor): The part id of every node.
        num_parts (int, optional): The number of parts; every id must lie in
            :obj:`[0, num_parts)`. (default: :obj:`None`, the largest id
            plus one)

    Raises:
        ValueError: If :obj:`cluster` does not hold non-negative integer
            ids, or an id does not fit :obj:`num_parts`.
    """
    cluster, num_parts = _check_cluster(cluster, num_parts)
    return torch.bincount(cluster, minlength=num_parts)


def edge_cut(edge_index: Tensor, cluster: Tensor,
             edge_weight: Optional[Tensor] = None) -> float:
    r"""EC: the fraction of edges (or of the edge weight) running between
    parts; self-loops are ignored.

    Args:
        edge_index (torch.Tensor): The graph connectivity of shape
            :obj:`[2, num_edges]`. An undirected graph may hold each edge
            once or in both directions: the fraction is the same.
        cluster (torch.Tensor): The part id of every node.
        edge_weight (torch.Tensor, optional): Edge weights of shape
            :obj:`[num_edges]`. (default: :obj:`None`)
    """
    return partition_report(edge_index, cluster,
                            edge_weight=edge_weight).edge_cut


def balance(edge_index: Tensor, cluster: Tensor,
            num_parts: Optional[int] = None) -> float:
    r"""BAL: the largest number of edges of a part over the mean,
    :math:`|E| / K` (see :class:`PartitionReport`)."""
    return partition_report(edge_index, cluster, num_parts).balance


def size_std(cluster: Tensor, num_parts: Optional[int] = None) -> float:
    r"""STD: :math:`\sqrt{\sum_i (|V_i| - |V| / K)^2 / (K - 1)}`.

    Raises:
        ValueError: As :func:`part_sizes`.
    """
    sizes = part_sizes(cluster, num_parts).double()
    k = sizes.numel()
    if k <= 1:
        return 0.0
    mean = float(cluster.numel()) / k
    return math.sqrt(float(((sizes - mean)**2).sum()) / (k - 1))


def partition_report(edge_index: Tensor, cluster: Tensor,
                     num_parts: Optional[int] = None,
                     edge_weight: Optional[Tensor] = None) -> PartitionReport:
    r"""Measures a partition: edge cut (EC), balance (BAL), the spread of
    part sizes (STD) and the part sizes themselves.

    Args:
        edge_index (torch.Tensor): The graph connectivity of shape
            :obj:`[2, num_edges]` or a sparse adjacency matrix; each
            undirected edge once or in both directions.
        cluster (torch.Tensor): The part id of every node, *e.g.*, from
            :func:`~torch_autoscale.partition.partition`.
        num_parts (int, optional): The number of parts :math:`K`.
            (default: :obj:`None`, the largest id plus one)
        edge_weight (torch.Tensor, optional): Edge weights of shape
            :obj:`[num_edges]` for a weighted edge cut. (default:
            :obj:`None`)

    Returns:
        PartitionReport: The metrics.

    Raises:
        ValueError: If :obj:`cluster` is empty or does not hold one
            non-negative integer id per node of :obj:`edge_index`, or an
            id does not fit :obj:`num_parts`.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
        >>> report = partition_report(edge_index, torch.tensor([0, 0, 1, 1]))
        >>> report.edge_cut
        0.3333333333333333
    """
    edge_index, cluster, num_parts = _prepare(edge_index, cluster, num_parts)
    edge_weight = check_weight(edge_weight, 'edge_weight',
                               edge_index.size(1),
                               'one entry per edge of `edge_index`')
    row, col = edge_index
    loops = row == col
    if bool(loops.any()):
        row, col = row[~loops], col[~loops]
        if edge_weight is not None:
            edge_weight = edge_weight[~loops]
    weight = (edge_weight.double() if edge_weight is not None else
              torch.ones(row.numel(), dtype=torch.double, device=row.device))
    cut = cluster[row] != cluster[col]
    total = float(weight.sum())
    cut_weight = float(weight[cut].sum())
    # Both ends count, so that a graph stored once or in both directions
    # gives the same balance:
    part_edges = torch.zeros(num_parts, dtype=torch.double,
                             device=row.device)
    part_edges.scatter_add_(0, cluster[row], weight)
    part_edges.scatter_add_(0, cluster[col], weight)
    is_symmetric = _is_symmetric(row, col, cluster.numel())
    num_edges = row.numel() // 2 if is_symmetric else row.numel()
    scale = 0.5 if is_symmetric else 1.0
    return PartitionReport(
        num_nodes=cluster.numel(),
        num_edges=num_edges,
        num_parts=num_parts,
        sizes=part_sizes(cluster, num_parts).cpu(),
        cut_edges=scale * cut_weight,
        edge_cut=cut_weight / total if total > 0 else 0.0,
        balance=(float(part_edges.max()) * num_parts / (2 * total)
                 if total > 0 else 1.0),
        size_std=size_std(cluster, num_parts),
    )


def _is_symmetric(row: Tensor, col: Tensor, num_nodes: int) -> bool:
    if row.numel() % 2 != 0:
        return False
    forward = torch.sort(row * num_nodes + col).values
    backward = torch.sort(col * num_nodes + row).values
    return bool(torch.equal(forward, backward))
