import pytest
import torch
from torch_geometric.utils import grid, remove_self_loops

import torch_autoscale.typing
from torch_autoscale.partition import backend, metis


def test_backend_fallback(monkeypatch):
    edge_index, _ = grid(10, 10)
    edge_index, _ = remove_self_loops(edge_index)
    num_nodes = 100
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_TORCH_SPARSE', False)
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_PYG_LIB', False)
    expected = metis(edge_index, num_nodes, 4)

    # Broken native backends (raising or returning invalid ids) fall back:
    def raising(*args):
        raise RuntimeError('Not compiled with METIS support')

    def invalid(rowptr, *args):
        return torch.full((rowptr.numel() - 1, ), 7)

    monkeypatch.setattr(torch_autoscale.typing, 'WITH_TORCH_SPARSE', True)
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_PYG_LIB', True)
    monkeypatch.setattr(backend, '_metis_torch_sparse', raising)
    monkeypatch.setattr(backend, '_metis_pyg_lib', invalid)
    assert torch.equal(metis(edge_index, num_nodes, 4), expected)

    # A working native backend is preferred and gets integer weights:
    calls = []

    def working(rowptr, col, num_parts, node_weight, edge_weight, recursive):
        calls.append((node_weight, edge_weight, recursive))
        return torch.arange(rowptr.numel() - 1) % num_parts

    monkeypatch.setattr(backend, '_metis_pyg_lib', working)
    cluster = metis(edge_index, num_nodes, 4, recursive=True,
                    node_weight=torch.rand(num_nodes),
                    edge_weight=torch.rand(edge_index.size(1)))
    assert torch.equal(cluster, torch.arange(num_nodes) % 4)
    node_weight, edge_weight, recursive = calls[0]
    assert recursive
    assert node_weight.dtype == edge_weight.dtype == torch.long
    assert int(node_weight.min()) >= 1 and int(node_weight.max()) == 1000
    assert int(edge_weight.min()) >= 1

    # No backend at all:
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_PYG_LIB', False)
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_PYMETIS', False)
    with pytest.raises(ImportError, match='pymetis'):
        metis(edge_index, num_nodes, 4)


def test_partition_csr_without_edges_balances_node_weight():
    rowptr = torch.zeros(7, dtype=torch.long)
    col = torch.empty(0, dtype=torch.long)
    node_weight = torch.tensor([3.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    cluster, name = backend.partition_csr(rowptr, col, 2, node_weight, None,
                                          False, 6)
    assert name == 'no edges'
    assert cluster.tolist() == [0, 1, 1, 1, 1, 1]
    cluster, name = backend.partition_csr(rowptr, col, 1, None, None, False,
                                          6)
    assert name == 'none' and cluster.tolist() == [0] * 6


def test_partition_csr_drops_zero_weight_edges(monkeypatch):
    received = []

    def spy(rowptr, col, num_parts, node_weight, edge_weight, recursive):
        received.append((rowptr, col, edge_weight))
        return torch.arange(rowptr.numel() - 1) % num_parts

    monkeypatch.setattr(backend, '_backends', lambda: [('spy', spy)])
    # A path 0 - 1 - 2 whose edge 1 - 2 weighs zero:
    rowptr = torch.tensor([0, 1, 3, 4])
    col = torch.tensor([1, 0, 2, 1])
    edge_weight = torch.tensor([2.0, 2.0, 0.0, 0.0])
    cluster, name = backend.partition_csr(rowptr, col, 2, None, edge_weight,
                                          False, 3)
    assert name == 'spy' and cluster.tolist() == [0, 1, 0]
    rowptr, col, edge_weight = received[0]
    assert rowptr.tolist() == [0, 1, 2, 2] and col.tolist() == [1, 0]
    assert edge_weight.dtype == torch.long
    assert edge_weight.tolist() == [1000, 1000]


def test_weight_limit_follows_the_index_width(monkeypatch):
    monkeypatch.setattr(backend, 'idx_width', lambda: 32)
    assert backend.weight_limit() == 2**(32 - backend.WEIGHT_HEADROOM_BITS)
