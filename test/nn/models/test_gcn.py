import pytest

from torch_autoscale.loader import EvalSubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import (
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    clustered_graph,
    fit_norm_statistics,
    train_losses,
)


@pytest.mark.parametrize('options', [
    dict(),
    dict(batch_norm=True),
    dict(residual=True),
    dict(linear=True, batch_norm=True, residual=True),
])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_gcn_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered_graph(500, 6, 'gcn_norm')
    model = GCN(data.num_nodes, data.num_features, 16, 8, num_layers,
                dropout=0.5, **options)
    fit_norm_statistics(model, data)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_gcn_repr_and_errors():
    model = GCN(10, 3, 16, 2, num_layers=2)
    assert repr(model) == 'GCN(3, 2, hidden_channels=16, num_layers=2)'
    assert len(model.histories) == 1
    with pytest.raises(ValueError, match="'dropout'"):
        GCN(10, 3, 16, 2, num_layers=2, dropout=1.5)


def test_gcn_trains_far_above_chance():
    data, ptr = clustered_graph(4000, 16, 'gcn_norm', num_classes=8)
    model = GCN(data.num_nodes, data.num_features, 32, 8, num_layers=2,
                dropout=0.5, drop_input=True)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=4)
    model.mini_inference(eval_loader, progress=False)
    train_losses(model, data, ptr, 40, batch_size=4, mask='train_mask',
                 weight_decay=5e-4)
    out = model.mini_inference(eval_loader, progress=False)
    acc = (out.argmax(-1) == data.y)[data.test_mask].float().mean()
    assert acc > 0.6  # chance is 0.125


@pytest.mark.parametrize('linear', [False, True])
def test_gcn_param_groups(linear):
    model = GCN(10, 3, 16, 2, num_layers=3, batch_norm=True, linear=linear)
    reg, nonreg = model.param_groups(5e-4, 1e-5)
    assert reg['weight_decay'] == 5e-4 and nonreg['weight_decay'] == 1e-5
    assert_param_groups_cover(model, (reg, nonreg))
    last = model.lins[1].weight if linear else model.convs[-1].lin.weight
    assert any(p is last for p in nonreg['params'])


@pytest.mark.parametrize('linear', [False, True])
def test_gcn_sparse_features(linear):
    data, ptr = clustered_graph(300, 4, 'gcn_norm')
    model = GCN(data.num_nodes, data.num_features, 16, 8, num_layers=3,
                dropout=0.5, drop_input=True, residual=True, linear=linear)
    assert model.supports_sparse_input
    assert_sparse_input_exact(model, data, ptr)
