import pytest
import torch
from torch_geometric import EdgeIndex

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.partition.validation import (
    check_int,
    check_node_weight_total,
    check_seed,
    check_weight,
    describe,
    to_edge_index,
)


def test_describe():
    assert describe(torch.zeros(2, 3)) == ('shape [2, 3] and dtype '
                                           'torch.float32')
    assert describe([1, 2]) == "an object of type 'list'"


def test_to_edge_index_forms_agree():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    out, num_nodes = to_edge_index(edge_index, None)
    assert num_nodes == 3 and torch.equal(out, edge_index)
    assert to_edge_index(edge_index, 5)[1] == 5

    adj = torch.sparse_coo_tensor(edge_index, torch.ones(4), (4, 4))
    for layout in (adj, adj.to_sparse_csr(), adj.to_sparse_csc()):
        out, num_nodes = to_edge_index(layout, None)
        assert num_nodes == 4
        assert sorted(map(tuple, out.t().tolist())) == sorted(
            map(tuple, edge_index.t().tolist()))

    out, num_nodes = to_edge_index(EdgeIndex(edge_index.int()), None)
    assert num_nodes == 3 and out.dtype == torch.long
    assert out.tolist() == edge_index.tolist()


def test_to_edge_index_errors():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="'edge_index.t\\(\\)'"):
        to_edge_index(torch.zeros(5, 2, dtype=torch.long), None)
    with pytest.raises(ValueError, match="'edge_index.long\\(\\)'"):
        to_edge_index(edge_index.float(), None)
    with pytest.raises(ValueError, match="'num_nodes >= 2'"):
        to_edge_index(edge_index, 1)
    with pytest.raises(ValueError, match="'num_nodes' must be at least 0"):
        to_edge_index(edge_index, -1)
    with pytest.raises(ValueError, match='empty graph'):
        to_edge_index(torch.empty(2, 0, dtype=torch.long), None)
    with pytest.raises(ValueError, match='square'):
        to_edge_index(torch.zeros(2, 3).to_sparse_csr(), None)
    with pytest.raises(ValueError, match="type 'list'"):
        to_edge_index([[0, 1], [1, 0]], None)


def test_check_weight():
    assert check_weight(None, 'w', 3, 'one per node') is None
    out = check_weight(torch.ones(3, 1, requires_grad=True), 'w', 3, '')
    assert out.size() == (3, ) and not out.requires_grad
    assert check_weight(torch.ones(3, dtype=torch.bool), 'w', 3,
                        '').dtype == torch.long
    with pytest.raises(ValueError, match=r"shape \[3\] \(one per node\)"):
        check_weight(torch.ones(4), 'w', 3, 'one per node')
    with pytest.raises(ValueError, match='real-valued'):
        check_weight(torch.ones(3, dtype=torch.cfloat), 'w', 3, '')
    with pytest.raises(PartitionInputError, match='nan_to_num'):
        check_weight(torch.tensor([1.0, float('nan'), 1.0]), 'w', 3, '')
    with pytest.raises(PartitionInputError, match='clamp'):
        check_weight(torch.tensor([1.0, -1.0, 1.0]), 'w', 3, '')
    with pytest.raises(PartitionInputError, match="'node_weight=None'"):
        check_node_weight_total(torch.zeros(3))


def test_check_int_and_seed():
    assert check_int(torch.tensor(3), 'rounds', 0) == 3
    with pytest.raises(ValueError, match="'rounds' must be at least 1"):
        check_int(0, 'rounds', 1)
    with pytest.raises(ValueError, match="'rounds' must be an integer"):
        check_int(1.5, 'rounds', 1)

    assert check_seed(None) is None and check_seed(2**64 - 1) == 2**64 - 1
    for seed in (True, 1.0, 2**64, -2**63 - 1):
        with pytest.raises(ValueError, match="'seed'"):
            check_seed(seed)
