import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from torch_autoscale.store import store_from_data, to_pyg


def graph(num_nodes=80):
    gen = torch.Generator().manual_seed(0)
    edge_index = to_undirected(torch.randint(num_nodes, (2, 200),
                                             generator=gen),
                               num_nodes=num_nodes)
    return Data(x=torch.randn(num_nodes, 4, generator=gen),
                y=torch.arange(num_nodes), edge_index=edge_index)


def test_pyg_interfaces(tmp_path):
    data = graph()
    store = store_from_data(data, tmp_path / 'g')
    feature_store, graph_store = to_pyg(store)
    names = sorted(a.attr_name for a in feature_store.get_all_tensor_attrs())
    assert names == ['x', 'y']
    index = torch.tensor([5, 1, 7])
    assert torch.equal(feature_store.get_tensor(group_name=None,
                                                attr_name='x', index=index),
                       data.x[index])
    (attr, ) = graph_store.get_all_edge_attrs()
    # Every layout describes the same edges.
    src, dst = graph_store.get_edge_index(edge_type=None, layout='coo',
                                          size=(80, 80), is_sorted=True)
    key = (src * 80 + dst).sort().values
    assert torch.equal(key, (data.edge_index[0] * 80 +
                             data.edge_index[1]).sort().values)
    with pytest.raises(ValueError, match='read-only'):
        feature_store.put_tensor(torch.zeros(80), group_name=None,
                                 attr_name='z', index=None)


def test_pyg_accessors(tmp_path):
    # What PyG's loaders call: the CSC view per edge type, and attribute
    # lookups through the FeatureStore's indexing syntax.
    data = graph()
    store = store_from_data(data, tmp_path / 'g')
    feature_store, graph_store = to_pyg(store)
    colptr, row, _ = graph_store.csc()
    assert torch.equal(colptr, store['rowptr']) and torch.equal(
        row, store['col'])
    assert torch.equal(feature_store[None, 'y', torch.tensor([3, 4])],
                       torch.tensor([3, 4]))
    assert feature_store.get_tensor_size(group_name=None,
                                         attr_name='x') == (80, 4)
