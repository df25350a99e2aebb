import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.data import Data
from torch_geometric.utils import erdos_renyi_graph

from torch_autoscale.partition import metis, permute, sort_by_cluster


def random_data(num_nodes: int = 50, num_edge_features: int = 3) -> Data:
    torch.manual_seed(12345)
    edge_index = erdos_renyi_graph(num_nodes, 0.1, directed=True)
    num_edges = edge_index.size(1)
    train_mask = torch.rand(num_nodes) < 0.5
    return Data(
        x=torch.randn(num_nodes, 8),
        y=torch.randint(0, 4, (num_nodes, )),
        train_mask=train_mask,
        val_mask=~train_mask,
        node_names=[f'node{i}' for i in range(num_nodes)],
        edge_index=edge_index,
        edge_attr=torch.randn(num_edges, num_edge_features),
        edge_weight=torch.rand(num_edges),
        graph_attr=torch.randn(1, 5),
        name='random',
    )


def edge_dict(edge_index, *attrs):
    out = {}
    for j, (src, dst) in enumerate(edge_index.t().tolist()):
        out[(src, dst)] = tuple(attr[j].tolist() for attr in attrs)
    return out


def test_permute_node_and_edge_attrs():
    data = random_data()
    perm = torch.randperm(data.num_nodes)
    out = permute(data, perm)

    # New node `i` is old node `perm[i]`:
    assert torch.equal(out.x, data.x[perm])
    assert torch.equal(out.y, data.y[perm])
    assert torch.equal(out.train_mask, data.train_mask[perm])
    assert torch.equal(out.val_mask, data.val_mask[perm])
    assert out.node_names == [data.node_names[i] for i in perm.tolist()]

    # Edges connect the same (old) nodes and keep their attributes:
    assert out.edge_index.size() == data.edge_index.size()
    mapped = perm[out.edge_index]  # Back to old labels.
    assert edge_dict(mapped, out.edge_attr, out.edge_weight) == edge_dict(
        data.edge_index, data.edge_attr, data.edge_weight)

    # Graph-level attributes are untouched:
    assert torch.equal(out.graph_attr, data.graph_attr)
    assert out.name == 'random'
    assert out.num_nodes == data.num_nodes

    # The input is not modified:
    fresh = random_data()
    for key, value in fresh.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(data[key], value)


def test_permute_sparse_node_features():
    data = random_data()
    data.x = (data.x * (data.x > 0)).to_sparse_csr()
    perm = torch.randperm(data.num_nodes)
    out = permute(data, perm)
    assert out.x.layout == torch.sparse_csr
    assert torch.equal(out.x.to_dense(), data.x.to_dense()[perm])


def test_permute_identity_is_noop():
    data = random_data()
    out = permute(data, torch.arange(data.num_nodes))
    assert set(out.keys()) == set(data.keys())
    for key, value in data.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(out[key], value), key
        else:
            assert out[key] == value


def test_permute_adj_t_csr():
    data = random_data()
    num_nodes = data.num_nodes
    row, col = data.edge_index
    dense = torch.zeros(num_nodes, num_nodes)
    dense[col, row] = data.edge_weight  # Rows are targets.
    data.adj_t = dense.to_sparse_csr()
    del data.edge_index, data.edge_attr, data.edge_weight

    perm = torch.randperm(num_nodes)
    out = permute(data, perm)
    adj_t = out.adj_t
    assert adj_t.layout == torch.sparse_csr
    assert adj_t.size() == (num_nodes, num_nodes)
    assert torch.equal(adj_t.to_dense(), dense[perm][:, perm])

    # Valid CSR: `crow` is a non-decreasing pointer with rows sorted by col:
    crow, col = adj_t.crow_indices(), adj_t.col_indices()
    assert int(crow[0]) == 0 and int(crow[-1]) == col.numel()
    assert (crow.diff() >= 0).all()
    for i in range(num_nodes):
        assert (col[crow[i]:crow[i + 1]].diff() > 0).all()
    torch._validate_sparse_csr_tensor_args(crow, col, adj_t.values(),
                                           adj_t.size())

    assert torch.equal(out.x, data.x[perm])


def test_permute_adj_t_with_edge_level_values():
    # Without `edge_index`, edge-level attributes follow the entries of the
    # sparse adjacency matrix:
    num_nodes = 6
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 5], [1, 2, 3, 4, 5, 0, 2]])
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0),
                                    torch.arange(7.) + 1,
                                    (num_nodes, num_nodes)).coalesce()
    adj_t = adj_t.to_sparse_csr()
    data = Data(adj_t=adj_t, edge_attr=adj_t.values().clone() * 10,
                num_nodes=num_nodes)
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    out = permute(data, perm)
    assert torch.equal(out.adj_t.to_dense(),
                       adj_t.to_dense()[perm][:, perm])
    assert torch.equal(out.edge_attr, out.adj_t.values() * 10)


@pytest.mark.parametrize('layout', ['coo', 'csc'])
def test_permute_other_sparse_layouts(layout):
    data = random_data(20)
    dense = torch.zeros(20, 20)
    dense[data.edge_index[0], data.edge_index[1]] = data.edge_weight
    adj = dense.to_sparse() if layout == 'coo' else dense.to_sparse_csc()
    data.adj = adj
    perm = torch.randperm(20)
    out = permute(data, perm)
    assert out.adj.layout == adj.layout
    assert torch.equal(out.adj.to_dense(), dense[perm][:, perm])


def test_permute_edge_index_subclass():
    data = random_data(20)
    data.edge_index = EdgeIndex(data.edge_index, sparse_size=(20, 20))
    perm = torch.randperm(20)
    out = permute(data, perm)
    assert isinstance(out.edge_index, EdgeIndex)
    assert out.edge_index.sparse_size() == (20, 20)
    assert torch.equal(perm[out.edge_index.as_tensor()],
                       data.edge_index.as_tensor())


def test_permute_by_metis_clusters():
    data = random_data(200)
    cluster = metis(data.edge_index, data.num_nodes, num_parts=4)
    perm, ptr = sort_by_cluster(cluster, num_parts=4)
    out = permute(data, perm)
    new_cluster = cluster[perm]
    for k in range(4):
        assert (new_cluster[ptr[k]:ptr[k + 1]] == k).all()
    assert torch.equal(out.x, data.x[perm])


def test_permute_invalid_perm():
    data = random_data(10)
    with pytest.raises(ValueError, match='perm.*10 nodes'):
        permute(data, torch.arange(9))
    with pytest.raises(ValueError, match='perm.*outside'):
        permute(data, torch.arange(1, 11))
    with pytest.raises(ValueError, match='perm.*repeats'):
        permute(data, torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(ValueError, match='perm.*integer'):
        permute(data, torch.arange(10).float())
    with pytest.raises(ValueError, match='perm.*one-dimensional'):
        permute(data, torch.arange(10).view(2, 5))
    with pytest.raises(ValueError, match='data'):
        permute(data.to_dict(), torch.arange(10))


def ring(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])


def test_permute_rejects_attributes_of_the_wrong_size():
    perm = torch.tensor([3, 2, 1, 0])
    # A node attribute a row short is neither node-, edge- nor graph-level:
    data = Data(x=torch.ones(3, 1), edge_index=ring(4), num_nodes=4)
    with pytest.raises(ValueError, match="'x' has size 3 along dimension 0.*"
                       r"number of nodes \(4\)"):
        permute(data, perm)
    data = Data(x=torch.ones(4, 1), edge_index=ring(4), num_nodes=4,
                edge_attr=torch.ones(5, 2))
    with pytest.raises(ValueError, match="'edge_attr' has size 5"):
        permute(data, perm)
    data = Data(x=torch.ones(5, 1).to_sparse_csr(), edge_index=ring(4),
                num_nodes=4)
    with pytest.raises(ValueError, match="'x' has size 5"):
        permute(data, perm)
    adj_t = torch.sparse_coo_tensor(ring(3), torch.ones(3), (3, 3))
    data = Data(edge_index=ring(4), adj_t=adj_t, num_nodes=4)
    with pytest.raises(ValueError, match=r"'adj_t' has shape \[3, 3\] but "
                       "the graph has 4 nodes"):
        permute(data, perm)


def test_permute_rejects_node_indices_out_of_range():
    perm = torch.tensor([3, 2, 1, 0])
    for bad, index in ((ring(4) + 1, 4), (ring(4) - 1, -1)):
        data = Data(x=torch.ones(4, 1), edge_index=bad, num_nodes=4)
        with pytest.raises(ValueError, match=f"'edge_index' holds node "
                           fr"index {index}, outside of \[0, 4\)"):
            permute(data, perm)
    data = Data(edge_index=ring(4).float(), num_nodes=4)
    with pytest.raises(ValueError, match="'edge_index' must hold integer"):
        permute(data, perm)
    data = Data(edge_index=ring(4), edge_label_index=torch.tensor([[0], [9]]),
                num_nodes=4)
    with pytest.raises(ValueError, match="'edge_label_index' holds node "
                       "index 9"):
        permute(data, perm)


def test_permute_graph_level_and_other_node_indices():
    perm = torch.tensor([3, 2, 1, 0])
    data = Data(x=torch.arange(4.).view(4, 1), edge_index=ring(4),
                y=torch.tensor([7]), u=torch.ones(1, 3),
                scalar=torch.tensor(2),
                edge_label_index=torch.tensor([[0, 1], [2, 3]]),
                face=torch.tensor([[0], [1], [2]]))
    out = permute(data, perm)
    assert out.x.view(-1).tolist() == [3., 2., 1., 0.]
    # Graph-level attributes stay; other node indices are relabelled:
    assert out.y.tolist() == [7] and torch.equal(out.u, data.u)
    assert int(out.scalar) == 2
    assert out.edge_label_index.tolist() == [[3, 2], [1, 0]]
    assert out.face.view(-1).tolist() == [3, 2, 1]
