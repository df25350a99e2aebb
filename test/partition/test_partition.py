import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import grid, remove_self_loops

from torch_autoscale.partition import (
    PARTITION_METHODS,
    lpmetis,
    partition,
    partition_report,
)


def grid_graph():
    edge_index, _ = grid(20, 20)
    edge_index, _ = remove_self_loops(edge_index)
    return edge_index, 400


@pytest.mark.parametrize('method', PARTITION_METHODS)
def test_every_method(method):
    edge_index, num_nodes = grid_graph()
    cluster = partition(edge_index, 8, method=method, seed=0)
    assert cluster.size() == (num_nodes, ) and cluster.dtype == torch.long
    sizes = torch.bincount(cluster, minlength=8)
    assert sizes.numel() == 8 and int(sizes.min()) > 0
    assert int(sizes.max()) <= 1.1 * num_nodes / 8 + 2
    # The same call on a `Data` object:
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    assert torch.equal(partition(data, 8, method=method, seed=0), cluster)


def test_quality_order():
    edge_index, num_nodes = grid_graph()
    cut = {
        method: partition_report(
            edge_index, partition(edge_index, 8, method=method, seed=0),
            8).edge_cut
        for method in PARTITION_METHODS
    }
    assert cut['metis'] < cut['random'] and cut['lpmetis'] < cut['random']
    assert cut['lpmetis'] <= 1.6 * cut['metis']


def test_random_and_contiguous_layouts():
    edge_index, num_nodes = grid_graph()
    contiguous = partition(edge_index, 3, method='contiguous')
    assert torch.equal(contiguous, contiguous.sort().values)
    assert torch.bincount(contiguous).tolist() == [134, 133, 133]
    a = partition(edge_index, 3, method='random', seed=1)
    assert torch.equal(a, partition(edge_index, 3, method='random', seed=1))
    assert not torch.equal(a, partition(edge_index, 3, method='random',
                                        seed=2))
    assert sorted(torch.bincount(a).tolist()) == [133, 133, 134]


def test_return_coarse_reaches_lpmetis():
    edge_index, num_nodes = grid_graph()
    cluster, coarse = partition(edge_index, 4, method='lpmetis', seed=0,
                                return_coarse=True)
    want = lpmetis(edge_index, num_nodes, 4, seed=0, return_coarse=True)
    assert torch.equal(cluster, want[0])
    assert torch.equal(coarse.node, want[1].node)
    assert torch.equal(coarse.part, want[1].part)
    # Without the refinement, every node's part is its coarse node's.
    cluster, coarse = partition(edge_index, 4, method='lpmetis', seed=0,
                                refine=0, return_coarse=True)
    assert torch.equal(cluster, coarse.part[coarse.node])


def test_kwargs_reach_the_method():
    edge_index, num_nodes = grid_graph()
    a = partition(edge_index, 4, method='lpmetis', seed=0, rounds=1)
    b = partition(edge_index, 4, method='lpmetis', seed=0, rounds=2)
    assert a.size() == b.size() == (num_nodes, )
    with pytest.raises(TypeError):
        partition(edge_index, 4, method='metis', rounds=1)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_parts=4, method='spectral'), "Unknown partition method"),
    (dict(num_parts=0, method='metis'), 'num_parts'),
    (dict(num_parts=401, method='metis'), 'num_parts'),
    (dict(num_parts=401, method='lpmetis'), 'num_parts'),
    (dict(num_parts=401, method='random'), 'num_parts'),
    (dict(num_parts=0, method='contiguous'), 'num_parts'),
    (dict(num_parts=2.5, method='random'), 'num_parts'),
    (dict(num_parts=2, method='random', rounds=1), 'no further arguments'),
    (dict(num_parts=2, method='random', seed=1.5), "'seed'"),
    (dict(num_parts=2, method='lpmetis', seed=1.5), "'seed'"),
])
def test_bad_input(kwargs, match):
    edge_index, _ = grid_graph()
    with pytest.raises(ValueError, match=match):
        partition(edge_index, num_nodes=400, **kwargs)


def test_data_without_edges_is_an_error():
    with pytest.raises(ValueError, match='edge_index'):
        partition(Data(x=torch.randn(4, 2)), 2)
