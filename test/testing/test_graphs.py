import pytest
import torch

from torch_autoscale.testing import (
    clustered_graph,
    random_graphs,
    sparse_features,
)


def test_clustered_graph():
    data, ptr = clustered_graph(200, 4, adj='gcn_norm')
    assert ptr.tolist()[0] == 0 and ptr.tolist()[-1] == 200
    assert data.adj_t.layout == torch.sparse_csr
    assert data.adj_t.size() == (200, 200)
    # Self-loops of the normalization: one diagonal entry per row.
    row = torch.arange(200).repeat_interleave(
        data.adj_t.crow_indices().diff())
    assert int((row == data.adj_t.col_indices()).sum()) == 200
    # Clusters are contiguous: most edges stay inside their range.
    cluster = torch.bucketize(torch.arange(200), ptr[1:], right=True)
    src, dst = data.edge_index
    assert float((cluster[src] == cluster[dst]).float().mean()) > 0.5
    with pytest.raises(ValueError, match="'adj'"):
        clustered_graph(200, 4, adj='normalized')


def test_random_graphs():
    graphs = random_graphs(5, 3, 8, num_classes=2, seed=1)
    assert [int(g.y) for g in graphs] == [0, 1, 0, 1, 0]
    for g in graphs:
        assert 3 <= g.num_nodes < 8 and g.x.size() == (g.num_nodes, 4)
        assert g.is_undirected()
    again = random_graphs(5, 3, 8, num_classes=2, seed=1)
    assert all(torch.equal(a.x, b.x) for a, b in zip(graphs, again))


def test_sparse_features():
    data, _ = clustered_graph(100, 2)
    dense, sparse = sparse_features(data, density=0.3)
    assert sparse.x.layout == torch.sparse_csr
    assert torch.equal(sparse.x.to_dense(), dense.x)
    assert 0.1 < float((dense.x != 0).float().mean()) < 0.5
    assert dense.adj_t is data.adj_t
