import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.utils import csr_adj_t, to_csr


def test_csr_adj_t():
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 0]])
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    adj_t = csr_adj_t(edge_index, 4, weight)
    assert adj_t.layout == torch.sparse_csr
    expected = torch.zeros(4, 4)
    expected[edge_index[1], edge_index[0]] = weight
    assert torch.equal(adj_t.to_dense(), expected)
    assert torch.equal(csr_adj_t(edge_index, 4).to_dense(),
                       (expected > 0).float())


def test_to_csr_edge_perm():
    edge_index = torch.tensor([[2, 0, 1], [0, 1, 0]])
    rowptr, col, value, perm = to_csr(Data(edge_index=edge_index,
                                           num_nodes=3))
    assert value is None
    assert rowptr.tolist() == [0, 2, 3, 3]
    assert col.tolist() == [1, 2, 0]
    assert torch.equal(edge_index[0, perm], col)


def test_errors():
    with pytest.raises(ValueError, match="'edge_weight'"):
        csr_adj_t(torch.tensor([[0], [1]]), 2, torch.ones(2))
    with pytest.raises(ValueError, match='neither'):
        to_csr(Data(x=torch.randn(3, 1)))
    with pytest.raises(ValueError, match=r'\[2, num_edges\]'):
        to_csr(Data(edge_index=torch.zeros(3, 2, dtype=torch.long),
                    num_nodes=3))
