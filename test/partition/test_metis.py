import importlib
import logging

import pytest
import torch
from torch_geometric.utils import (
    grid,
    remove_self_loops,
    stochastic_blockmodel_graph,
    to_undirected,
)

import torch_autoscale.typing
from torch_autoscale.partition import metis, sort_by_cluster

# `torch_autoscale.partition.metis` is shadowed by the function of that name:
metis_module = importlib.import_module('torch_autoscale.partition.metis')


def grid_graph(height: int = 45, width: int = 45):
    edge_index, _ = grid(height, width)
    edge_index, _ = remove_self_loops(edge_index)
    return edge_index, height * width


def edge_cut(edge_index, cluster) -> int:
    row, col = to_undirected(edge_index)
    return int((cluster[row] != cluster[col]).sum()) // 2


def assert_valid(cluster, num_nodes, num_parts):
    assert cluster.dtype == torch.long
    assert cluster.size() == (num_nodes, )
    assert int(cluster.min()) >= 0 and int(cluster.max()) < num_parts


@pytest.fixture
def pymetis_only(monkeypatch):
    # Disables the optional native backends, so `pymetis` is tested even
    # where `torch-sparse` or `pyg-lib` are installed.
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_TORCH_SPARSE', False)
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_PYG_LIB', False)


@pytest.mark.parametrize('recursive', [False, True])
def test_metis_grid(recursive):
    edge_index, num_nodes = grid_graph()
    num_parts = 8

    cluster = metis(edge_index, num_nodes, num_parts, recursive=recursive)
    assert_valid(cluster, num_nodes, num_parts)

    sizes = torch.bincount(cluster, minlength=num_parts)
    assert int(sizes.min()) > 0
    assert int(sizes.max()) <= 1.3 * num_nodes / num_parts

    # A random balanced partition cuts ~(1 - 1/k) of all edges:
    random_cluster = torch.randperm(num_nodes) % num_parts
    assert edge_cut(edge_index, cluster) < 0.2 * edge_cut(
        edge_index, random_cluster)


def test_metis_sbm(pymetis_only):
    torch.manual_seed(12345)
    num_parts = 4
    block_sizes = [500] * num_parts
    edge_probs = torch.full((num_parts, num_parts), 0.001)
    edge_probs.fill_diagonal_(0.02)
    edge_index = stochastic_blockmodel_graph(block_sizes, edge_probs)
    num_nodes = sum(block_sizes)

    cluster = metis(edge_index, num_nodes, num_parts)
    assert_valid(cluster, num_nodes, num_parts)
    sizes = torch.bincount(cluster, minlength=num_parts)
    assert int(sizes.max()) <= 1.3 * num_nodes / num_parts

    random_cluster = torch.randperm(num_nodes) % num_parts
    assert edge_cut(edge_index, cluster) < 0.5 * edge_cut(
        edge_index, random_cluster)


def test_metis_logs_time(caplog):
    edge_index, num_nodes = grid_graph(10, 10)
    with caplog.at_level(logging.INFO, logger=metis_module.__name__):
        metis(edge_index, num_nodes, num_parts=2)
    assert any('parts in' in r.getMessage() and r.levelno == logging.INFO
               for r in caplog.records)


def test_metis_sparse_csr_input():
    edge_index, num_nodes = grid_graph(20, 20)
    expected = metis(edge_index, num_nodes, num_parts=4)

    # Values of the sparse matrix are *not* used as edge weights:
    value = torch.rand(edge_index.size(1)) * 100
    adj = torch.sparse_coo_tensor(edge_index, value,
                                  (num_nodes, num_nodes)).coalesce()
    assert torch.equal(metis(adj.to_sparse_csr(), None, 4), expected)
    assert torch.equal(metis(adj.to_sparse_csr(), num_nodes, 4), expected)
    assert torch.equal(metis(adj, None, 4), expected)
    assert torch.equal(metis(adj.to_sparse_csc(), None, 4), expected)

    with pytest.raises(ValueError, match='num_nodes'):
        metis(adj.to_sparse_csr(), num_nodes + 1, 4)


def test_metis_directed_and_self_loops():
    edge_index, num_nodes = grid_graph(20, 20)
    expected = metis(edge_index, num_nodes, num_parts=4)

    # One direction of every edge, shuffled:
    directed = edge_index[:, edge_index[0] < edge_index[1]]
    directed = directed[:, torch.randperm(directed.size(1))]
    assert directed.size(1) == edge_index.size(1) // 2
    assert torch.equal(metis(directed, num_nodes, 4), expected)

    loops = torch.arange(num_nodes).repeat(2, 1)
    with_loops = torch.cat([edge_index, loops], dim=1)
    assert torch.equal(metis(with_loops, num_nodes, 4), expected)


def test_metis_isolated_nodes_and_num_nodes_inference():
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    cluster = metis(edge_index, 8, num_parts=2)  # Nodes 4-7 are isolated.
    assert_valid(cluster, 8, 2)
    assert metis(edge_index, None, num_parts=2).numel() == 4


def test_metis_single_part():
    edge_index, num_nodes = grid_graph(5, 5)
    for num_parts in [0, 1]:
        cluster = metis(edge_index, num_nodes, num_parts)
        assert cluster.dtype == torch.long
        assert torch.equal(cluster, torch.zeros(num_nodes, dtype=torch.long))


def test_metis_num_parts_equals_num_nodes():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    cluster = metis(edge_index, 4, num_parts=4)
    assert_valid(cluster, 4, 4)


def test_metis_node_weight():
    # Nodes in the left half are ten times heavier than in the right half,
    # so balancing weight (not count) gives parts of very different sizes:
    height, width = 20, 20
    edge_index, num_nodes = grid_graph(height, width)
    left = (torch.arange(num_nodes) % width) < width // 2
    num_parts = 4

    for node_weight in [left.long() * 9 + 1, left.float() * 0.9 + 0.1]:
        cluster = metis(edge_index, num_nodes, num_parts,
                        node_weight=node_weight)
        assert_valid(cluster, num_nodes, num_parts)
        weight = torch.zeros(num_parts).index_add_(0, cluster,
                                                   node_weight.float())
        assert float(weight.max()) <= 1.3 * float(weight.mean())
        sizes = torch.bincount(cluster, minlength=num_parts)
        assert int(sizes.max()) > 2 * int(sizes.min())

    # Boolean weights (e.g., a training mask) are accepted:
    cluster = metis(edge_index, num_nodes, num_parts, node_weight=left)
    assert_valid(cluster, num_nodes, num_parts)
    counts = torch.bincount(cluster[left], minlength=num_parts)
    assert int(counts.max()) <= 1.3 * int(left.sum()) / num_parts


@pytest.mark.parametrize('dtype', [torch.long, torch.float])
def test_metis_edge_weight(dtype):
    # A ring with two light edges opposite each other: the only balanced
    # bisection that avoids heavy edges cuts exactly those two.
    num_nodes = 100
    row = torch.arange(num_nodes)
    edge_index = torch.stack([row, (row + 1) % num_nodes], dim=0)
    edge_weight = torch.full((num_nodes, ), 100, dtype=dtype)
    edge_weight[[24, 74]] = 1 if dtype == torch.long else 0.01

    cluster = metis(edge_index, num_nodes, 2, edge_weight=edge_weight)
    inner = cluster[25:75]
    outer = torch.cat([cluster[:25], cluster[75:]])
    assert (inner == inner[0]).all() and (outer == outer[0]).all()
    assert inner[0] != outer[0]


def test_metis_edge_weight_with_sparse_input():
    num_nodes = 100
    row = torch.arange(num_nodes)
    edge_index = torch.stack([row, (row + 1) % num_nodes], dim=0)
    edge_weight = torch.full((num_nodes, ), 100.)
    edge_weight[[24, 74]] = 0.01
    expected = metis(edge_index, num_nodes, 2, edge_weight=edge_weight)

    adj = torch.sparse_coo_tensor(edge_index, edge_weight,
                                  (num_nodes, num_nodes)).coalesce()
    adj = adj.to_sparse_csr()
    out = metis(adj, None, 2, edge_weight=adj.values())
    assert torch.equal(out, expected)


def test_metis_zero_weights():
    edge_index, num_nodes = grid_graph(10, 10)
    edge_weight = torch.ones(edge_index.size(1))
    edge_weight[::2] = 0  # Zero-weight edges are dropped.
    node_weight = torch.ones(num_nodes)
    node_weight[:10] = 0
    cluster = metis(edge_index, num_nodes, 4, node_weight=node_weight,
                    edge_weight=edge_weight)
    assert_valid(cluster, num_nodes, 4)


def test_metis_without_edges_balances_node_weight():
    # No edges (none given, or all of weight zero): METIS is not called;
    # ranges of the node order of balanced total node weight.
    cluster = metis(torch.empty(2, 0, dtype=torch.long), 10, 3)
    assert cluster.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    edge_index, num_nodes = grid_graph(5, 5)
    node_weight = torch.arange(num_nodes) % 2 * 3 + 1  # 1, 4, 1, 4, ...
    cluster = metis(edge_index, num_nodes, 4, node_weight=node_weight,
                    edge_weight=torch.zeros(edge_index.size(1)))
    assert torch.all(cluster[1:] >= cluster[:-1])  # Ranges.
    part_weight = torch.zeros(4, dtype=torch.long).index_add_(
        0, cluster, node_weight)
    assert int(part_weight.max() - part_weight.min()) <= 4


def test_metis_errors():
    edge_index, num_nodes = grid_graph(5, 5)

    with pytest.raises(ValueError, match=r"num_parts.*\(26\).*25"):
        metis(edge_index, num_nodes, num_parts=26)
    with pytest.raises(ValueError, match='num_parts'):
        metis(edge_index, num_nodes, num_parts=2.5)
    with pytest.raises(ValueError, match='empty graph'):
        metis(torch.empty(2, 0, dtype=torch.long), None, num_parts=2)
    with pytest.raises(ValueError, match='empty graph'):
        metis(torch.empty(2, 0, dtype=torch.long), 0, num_parts=1)
    with pytest.raises(ValueError, match='empty graph'):
        metis(torch.sparse_coo_tensor(torch.empty(2, 0, dtype=torch.long),
                                      torch.empty(0), (0, 0)), None, 2)

    with pytest.raises(ValueError, match=r"edge_index.*\[2, num_edges\]"):
        metis(edge_index[:1], num_nodes, 2)
    with pytest.raises(ValueError, match=r"edge_index\.t\(\)"):
        metis(edge_index.t(), num_nodes, 2)
    with pytest.raises(ValueError, match='edge_index'):
        metis(edge_index.float(), num_nodes, 2)
    with pytest.raises(ValueError, match='edge_index'):
        metis(edge_index - 1, num_nodes, 2)
    with pytest.raises(ValueError, match='num_nodes'):
        metis(edge_index, num_nodes - 1, 2)
    with pytest.raises(ValueError, match='square'):
        adj = torch.sparse_coo_tensor(edge_index, torch.ones(
            edge_index.size(1)), (num_nodes, num_nodes + 1))
        metis(adj.to_sparse_csr(), None, 2)

    with pytest.raises(ValueError, match='node_weight.*non-negative'):
        metis(edge_index, num_nodes, 2, node_weight=-torch.ones(num_nodes))
    with pytest.raises(ValueError, match='edge_weight.*non-negative'):
        metis(edge_index, num_nodes, 2,
              edge_weight=-torch.ones(edge_index.size(1)))
    with pytest.raises(ValueError, match=r"node_weight.*shape \[25\]"):
        metis(edge_index, num_nodes, 2, node_weight=torch.ones(24))
    with pytest.raises(ValueError, match='edge_weight.*shape'):
        metis(edge_index, num_nodes, 2, edge_weight=torch.ones(3))
    with pytest.raises(ValueError, match='edge_weight.*finite'):
        weight = torch.ones(edge_index.size(1))
        weight[0] = float('nan')
        metis(edge_index, num_nodes, 2, edge_weight=weight)
    with pytest.raises(ValueError, match='node_weight.*positive'):
        metis(edge_index, num_nodes, 2, node_weight=torch.zeros(num_nodes))


def test_metis_empty_parts_keep_ids(pymetis_only):
    # On tiny graphs METIS may leave parts empty; ids are never renumbered:
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    for num_parts in range(2, 7):
        cluster = metis(edge_index, 6, num_parts)
        assert_valid(cluster, 6, num_parts)
        perm, ptr = sort_by_cluster(cluster, num_parts)
        assert ptr.numel() == num_parts + 1 and int(ptr[-1]) == 6


def test_sort_by_cluster():
    cluster = torch.tensor([2, 0, 2, 1, 0, 2, 4])
    perm, ptr = sort_by_cluster(cluster)
    assert perm.tolist() == [1, 4, 3, 0, 2, 5, 6]  # Stable within a part.
    assert ptr.dtype == torch.long
    assert ptr.tolist() == [0, 2, 3, 6, 6, 7]  # Part 3 is empty.

    perm, ptr = sort_by_cluster(cluster, num_parts=7)
    assert ptr.tolist() == [0, 2, 3, 6, 6, 7, 7, 7]

    # Groups are contiguous, and `ptr` delimits exactly each part:
    cluster = torch.randint(0, 10, (1000, ))
    perm, ptr = sort_by_cluster(cluster, num_parts=10)
    assert torch.equal(perm.sort().values, torch.arange(1000))
    for k in range(10):
        part = perm[ptr[k]:ptr[k + 1]]
        assert (cluster[part] == k).all()
        assert part.numel() == int((cluster == k).sum())
        assert (part.diff() > 0).all()

    perm, ptr = sort_by_cluster(torch.empty(0, dtype=torch.long), 2)
    assert perm.numel() == 0 and ptr.tolist() == [0, 0, 0]

    with pytest.raises(ValueError, match='num_parts'):
        sort_by_cluster(torch.tensor([0, 3]), num_parts=2)
    with pytest.raises(ValueError, match='cluster'):
        sort_by_cluster(torch.tensor([0, -1]))
    with pytest.raises(ValueError, match='cluster'):
        sort_by_cluster(torch.tensor([0., 1.]))
    with pytest.raises(ValueError, match='cluster'):
        sort_by_cluster(torch.zeros(2, 2, dtype=torch.long))


def test_seed_varies_the_parts():
    edge_index, _ = grid(24, 24)
    fixed = [metis(edge_index, 576, 6, verbose=False) for _ in range(2)]
    assert torch.equal(*fixed)  # METIS' default seed: the same parts.
    seeded = {s: metis(edge_index, 576, 6, verbose=False, seed=s)
              for s in range(4)}
    assert torch.equal(seeded[1], metis(edge_index, 576, 6, verbose=False,
                                        seed=1))
    # Every seed its own parts: seeds 0 and 1 too (the C library's srand
    # takes 0 for 1).
    assert len({tuple(c.tolist()) for c in seeded.values()}) == 4
    for c in seeded.values():
        assert c.unique().tolist() == list(range(6))
    assert metis(edge_index, 576, 6, verbose=False,
                 seed=2**31 - 2).unique().tolist() == list(range(6))
    for bad in (-1, 2**31 - 1, 1.5, True):
        with pytest.raises(ValueError, match="'seed'"):
            metis(edge_index, 576, 6, seed=bad)


def test_seed_needs_pymetis(monkeypatch):
    import importlib
    backend = importlib.import_module('torch_autoscale.partition.backend')
    monkeypatch.setattr(backend, '_backends', lambda: [
        (name, fn) for name, fn in [('torch-sparse', None)]])
    edge_index, _ = grid(8, 8)
    with pytest.raises(ImportError, match="pip install pymetis"):
        metis(edge_index, 64, 2, seed=0)
