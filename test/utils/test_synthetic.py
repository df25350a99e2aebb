import pytest
import torch
from torch_geometric.utils import is_undirected

from torch_autoscale.utils import homophilous_sbm


def test_homophilous_sbm():
    data = homophilous_sbm(3000, num_classes=5, avg_degree=8, homophily=0.9,
                           num_features=7, seed=1)
    assert data.x.size() == (3000, 7)
    assert data.y.unique().numel() == 5
    assert is_undirected(data.edge_index, num_nodes=3000)
    assert (data.edge_index[0] != data.edge_index[1]).all()
    # About avg_degree * num_nodes directed edges (minus duplicates/loops).
    assert 0.9 * 24000 < data.edge_index.size(1) <= 24000
    same = (data.y[data.edge_index[0]] == data.y[data.edge_index[1]])
    assert 0.85 < same.float().mean() < 0.95  # 0.9 + 0.1 / 5
    masks = data.train_mask.int() + data.val_mask.int() + data.test_mask.int()
    assert (masks == 1).all()
    assert int(data.train_mask.sum()) == 300
    # Deterministic for a seed.
    again = homophilous_sbm(3000, num_classes=5, avg_degree=8, homophily=0.9,
                            num_features=7, seed=1)
    assert torch.equal(again.edge_index, data.edge_index)
    assert torch.equal(again.x, data.x)


def test_homophilous_sbm_errors():
    with pytest.raises(ValueError, match="'num_nodes'"):
        homophilous_sbm(1)
    with pytest.raises(ValueError, match="'homophily'"):
        homophilous_sbm(100, homophily=1.5)
    with pytest.raises(ValueError, match="'num_classes'"):
        homophilous_sbm(100, num_classes=0)


@pytest.mark.parametrize('kwargs,match', [
    (dict(avg_degree=-3), "'avg_degree' must be a number in \\[0, 99\\]"),
    (dict(avg_degree=float('nan')), "'avg_degree'"),
    (dict(avg_degree=1e12), "'avg_degree'"),
    (dict(num_nodes=100.5), "'num_nodes' must be an integer"),
    (dict(num_nodes=True), "'num_nodes' must be an integer"),
    (dict(num_classes=2.0), "'num_classes' must be an integer"),
    (dict(num_classes=101), "'num_classes' must lie in"),
    (dict(num_features=-1), "'num_features' must be at least 0"),
    (dict(homophily=float('nan')), "'homophily'"),
    (dict(feature_signal=float('inf')), "'feature_signal' must be a finite"),
    (dict(train_ratio=-0.1), "'train_ratio'"),
    (dict(val_ratio='0.1'), "'val_ratio'"),
    (dict(train_ratio=0.6, val_ratio=0.6), 'sum to at most 1'),
    (dict(seed=0.5), "'seed' must be an integer"),
])
def test_homophilous_sbm_checks_every_argument(kwargs, match):
    kwargs = dict(dict(num_nodes=100), **kwargs)
    with pytest.raises(ValueError, match=match):
        homophilous_sbm(**kwargs)


def test_homophilous_sbm_edgeless_and_numpy_arguments():
    import numpy as np
    data = homophilous_sbm(np.int64(50), avg_degree=0, num_features=0,
                           seed=np.int64(3))
    assert data.edge_index.size(1) == 0 and data.x.size() == (50, 0)
