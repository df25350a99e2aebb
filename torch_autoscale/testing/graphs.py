r"""Graphs for tests: a clustered synthetic graph whose clusters are
contiguous node ranges, small random graphs with graph labels, and sparse
copies of node features."""
import copy
from typing import Any, List, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def clustered_graph(num_nodes: int, num_parts: int, adj: str = 'raw',
                    seed: int = 0, **sbm_kwargs: Any) -> Tuple[Data, Tensor]:
    r"""A synthetic :func:`~torch_autoscale.utils.homophilous_sbm` graph,
    clustered with :func:`~torch_autoscale.partition.metis` and permuted so
    that every cluster is a contiguous range of nodes.

    Args:
        num_nodes (int): The number of nodes.
        num_parts (int): The number of clusters.
        adj (str, optional): The :obj:`adj_t` the graph carries: the plain
            CSR adjacency without self-loops (:obj:`"raw"`), or its symmetric
            normalization with self-loops (:obj:`"gcn_norm"`).
            (default: :obj:`"raw"`)
        seed (int, optional): The seed of the graph. (default: :obj:`0`)
        **sbm_kwargs (optional): Further arguments of
            :func:`~torch_autoscale.utils.homophilous_sbm`.

    Returns:
        The permuted graph and the cluster boundaries :obj:`ptr`.
    """
    if adj not in ('raw', 'gcn_norm'):
        raise ValueError(f"'adj' must be 'raw' or 'gcn_norm' (got {adj!r})")
    data = homophilous_sbm(num_nodes, seed=seed, **sbm_kwargs)
    data.adj_t = csr_adj_t(data.edge_index, num_nodes)
    if adj == 'gcn_norm':
        data.adj_t, _ = gcn_norm(data.adj_t)
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


def random_graphs(num_graphs: int, min_nodes: int, max_nodes: int,
                  edges_per_node: int = 2, num_classes: int = 3,
                  x_scale: float = 1.0, seed: int = 0) -> List[Data]:
    r"""Small random undirected graphs with four node features and a graph
    label each, for the segment-training tests.

    Args:
        num_graphs (int): The number of graphs.
        min_nodes (int): The fewest nodes of a graph.
        max_nodes (int): One more than the most nodes of a graph.
        edges_per_node (int, optional): Random edges drawn per node before
            symmetrization. (default: :obj:`2`)
        num_classes (int, optional): Graph :obj:`i` gets label
            :obj:`i % num_classes`. (default: :obj:`3`)
        x_scale (float, optional): The standard deviation of the features.
            (default: :obj:`1.0`)
        seed (int, optional): The seed. (default: :obj:`0`)
    """
    from torch_geometric.utils import to_undirected
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        n = int(torch.randint(min_nodes, max_nodes, (1, ), generator=gen))
        edge_index = to_undirected(
            torch.randint(n, (2, edges_per_node * n), generator=gen),
            num_nodes=n)
        graphs.append(
            Data(x=x_scale * torch.randn(n, 4, generator=gen),
                 edge_index=edge_index, y=torch.tensor([i % num_classes]),
                 num_nodes=n))
    return graphs


def sparse_features(data: Data, density: float = 0.2,
                    seed: int = 0) -> Tuple[Data, Data]:
    r"""Zeroes most entries of :obj:`data.x` and returns two copies of the
    graph: one with these features dense, one with them as a
    :obj:`torch.sparse_csr` matrix.

    Args:
        data (torch_geometric.data.Data): The graph.
        density (float, optional): The fraction of entries kept.
            (default: :obj:`0.2`)
        seed (int, optional): The seed of the kept entries. (default: :obj:`0`)
    """
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(data.x.size(), generator=gen) < density
    dense, sparse = copy.copy(data), copy.copy(data)
    dense.x = data.x * keep
    sparse.x = dense.x.to_sparse_csr()
    return dense, sparse
