r"""PageRank-guided structure refinement within every part.

LPS-GNN refines every subgraph before training on it: the nodes of least
PageRank within their subgraph (about 5% in the paper) are removed. Here a
removed node keeps its place, features and labels but loses every edge, so
that message passing no longer goes through it and the graph stays
symmetric; every node still gets a prediction.

PyG has no PageRank utility (its :class:`~torch_geometric.transforms.GDC`
computes personalized PageRank matrices, far more than the scores needed
here), so the scores come from a power iteration over all parts at once
(:func:`subgraph_pagerank`).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from torch_autoscale.partition.validation import (
    check_cluster,
    to_edge_index,
)


def subgraph_pagerank(edge_index: Tensor, cluster: Tensor,
                      num_nodes: Optional[int] = None, alpha: float = 0.85,
                      max_iter: int = 100, tol: float = 1e-12) -> Tensor:
    r"""The PageRank of every node within the subgraph its part induces:
    edges between parts are ignored, a random surfer teleports (with
    probability :math:`1 - \alpha`) and leaves a node without out-edges to
    a uniformly random node of the same part. The scores of a part sum to
    one.

    Args:
        edge_index (torch.Tensor): The edges (source, target) of shape
            :obj:`[2, num_edges]`; repeated edges count repeatedly.
        cluster (torch.Tensor): The part of every node.
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, inferred)
        alpha (float, optional): The damping factor. (default: :obj:`0.85`)
        max_iter (int, optional): The most power iterations.
            (default: :obj:`100`)
        tol (float, optional): Stops when the scores change by less than
            this (L1, summed over nodes). (default: :obj:`1e-12`)

    Returns:
        torch.Tensor: The :obj:`float64` scores, of shape
        :obj:`[num_nodes]`.
    """
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    cluster = check_cluster(cluster, num_nodes)
    if not 0.0 <= float(alpha) < 1.0:
        raise ValueError(f"'alpha' must be in [0, 1) (got {alpha})")
    if num_nodes == 0:
        return torch.zeros(0, dtype=torch.double)
    device = edge_index.device
    cluster = cluster.to(device)
    src, dst = edge_index
    inside = cluster[src] == cluster[dst]
    src, dst = src[inside], dst[inside]
    out_deg = torch.bincount(src, minlength=num_nodes).double()
    size = torch.bincount(cluster).double()
    share = 1.0 / size[cluster]  # Uniform within the part.
    dangling = out_deg == 0
    pr = share.clone()
    inv = torch.where(dangling, 0.0, 1.0 / out_deg.clamp(min=1))
    for _ in range(max_iter):
        flow = torch.zeros_like(pr).index_add_(0, dst, (pr * inv)[src])
        lost = torch.zeros_like(size).index_add_(
            0, cluster[dangling], pr[dangling])
        new = alpha * (flow + lost[cluster] * share) + (1 - alpha) * share
        delta = float((new - pr).abs().sum())
        pr = new
        if delta < tol:
            break
    return pr


def pagerank_refine(edge_index: Tensor, cluster: Tensor,
                    fraction: float = 0.05, num_nodes: Optional[int] = None,
                    alpha: float = 0.85) -> Tuple[Tensor, Tensor]:
    r"""Removes from every part the :obj:`fraction` of its nodes with the
    least PageRank within the part (:func:`subgraph_pagerank`): every edge
    from or to them, across parts too. A part of :math:`s` nodes loses
    :math:`\lfloor \text{fraction} \cdot s + 1/2 \rfloor`; ties go to the
    larger node id. A symmetric graph stays symmetric.

    Args:
        edge_index (torch.Tensor): The edges of shape :obj:`[2, num_edges]`.
        cluster (torch.Tensor): The part of every node.
        fraction (float, optional): The share of every part's nodes to
            remove, in :obj:`[0, 1)`. (default: :obj:`0.05`)
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, inferred)
        alpha (float, optional): PageRank's damping factor.
            (default: :obj:`0.85`)

    Returns:
        (torch.Tensor, torch.Tensor): The mask of the edges kept, of shape
        :obj:`[num_edges]`, and the mask of the removed nodes, of shape
        :obj:`[num_nodes]`.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"'fraction' must be in [0, 1) (got {fraction})")
    if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:
        raise ValueError("'edge_index' must be a [2, num_edges] tensor (the "
                         "result masks its edges), not a sparse matrix")
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    cluster = check_cluster(cluster, num_nodes).to(
        edge_index.device)
    score = subgraph_pagerank(edge_index, cluster, num_nodes, alpha)
    # Nodes by part, then score (increasing), then id (decreasing), by
    # stable sorts:
    order = torch.arange(num_nodes - 1, -1, -1, device=score.device)
    order = order[torch.sort(score[order], stable=True)[1]]
    order = order[torch.sort(cluster[order], stable=True)[1]]
    size = torch.bincount(cluster, minlength=1)
    drop = torch.floor(size.double() * float(fraction) + 0.5).long()
    start = torch.cumsum(size, 0) - size
    rank = torch.arange(num_nodes, device=score.device) - start[
        cluster[order]]
    removed = torch.zeros(num_nodes, dtype=torch.bool, device=score.device)
    removed[order[rank < drop[cluster[order]]]] = True
    keep = ~(removed[edge_index[0]] | removed[edge_index[1]])
    return keep, removed


class PageRankRefine(BaseTransform):
    r"""LPS-GNN's structure refinement (`"LPS-GNN: Deploying Graph Neural
    Networks on Graphs with 100-Billion Edges"
    <https://arxiv.org/abs/2507.14570>`_): in every part, the
    :obj:`fraction` of nodes with the least PageRank within the part lose
    all their edges (see :func:`pagerank_refine`). Nodes, features and
    labels stay; edge attributes of removed edges go with them. The
    removed nodes are marked in :obj:`data.refined_out`.

    Apply it to a graph with :obj:`edge_index` (before building
    :obj:`adj_t`) and with every node's part in :obj:`data[cluster_attr]`.

    .. code-block:: python

        data.cluster = lpmetis(data.edge_index, data.num_nodes, 40, seed=0)
        data = PageRankRefine(fraction=0.05)(data)

    Args:
        fraction (float, optional): The share of every part's nodes to cut
            off, in :obj:`[0, 1)`. (default: :obj:`0.05`, the paper's)
        alpha (float, optional): PageRank's damping factor.
            (default: :obj:`0.85`)
        cluster_attr (str, optional): The node attribute holding every
            node's part. (default: :obj:`"cluster"`)
    """
    def __init__(self, fraction: float = 0.05, alpha: float = 0.85,
                 cluster_attr: str = 'cluster'):
        if not 0.0 <= float(fraction) < 1.0:
            raise ValueError(f"'fraction' must be in [0, 1) (got "
                             f"{fraction})")
        self.fraction = float(fraction)
        self.alpha = float(alpha)
        self.cluster_attr = cluster_attr

    def forward(self, data: Data) -> Data:
        if data.get('edge_index') is None:
            raise ValueError(
                "'PageRankRefine' needs 'data.edge_index'; apply it before "
                "building 'adj_t' (or rebuild 'edge_index' from it)")
        cluster = data.get(self.cluster_attr)
        if cluster is None:
            raise ValueError(
                f"'PageRankRefine' reads every node's part from "
                f"'data.{self.cluster_attr}'; set it (e.g., "
                f"'data.{self.cluster_attr} = lpmetis(data.edge_index, "
                f"data.num_nodes, num_parts)') or pass 'cluster_attr'")
        keep, removed = pagerank_refine(data.edge_index, cluster,
                                        self.fraction, data.num_nodes,
                                        self.alpha)
        out = data.edge_subgraph(keep)
        out.refined_out = removed
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(fraction={self.fraction}, '
                f'alpha={self.alpha})')
