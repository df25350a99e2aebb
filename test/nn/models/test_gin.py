import pytest
import torch

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models.gin import GIN
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_stale_histories_differ,
    clustered_graph,
    fit_norm_statistics,
    train_losses,
)


def clustered(num_nodes=300, num_parts=6):
    return clustered_graph(num_nodes, num_parts, num_classes=4, avg_degree=6,
                           num_features=16)


def make(data, num_layers=3, **kwargs):
    return GIN(data.num_nodes, data.num_features, 16, 4, num_layers, **kwargs)


@pytest.mark.parametrize('options', [
    dict(),
    dict(batch_norm=False, residual=False, train_eps=False),
    dict(dropout=0.5, reg_weight=1.0),
])
@pytest.mark.parametrize('num_layers', [1, 3])
@pytest.mark.filterwarnings('ignore:.*records no Lipschitz penalty')
def test_gin_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered()
    model = make(data, num_layers, **options)
    for conv in model.convs:  # A non-zero epsilon.
        if isinstance(conv.eps, torch.nn.Parameter):
            conv.eps.data.fill_(0.3)
    fit_norm_statistics(model, data)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_gin_exact_histories_make_gas_exact():
    data, ptr = clustered()
    model = fit_norm_statistics(make(data, 3), data)
    assert_stale_histories_differ(model, data, ptr, batch_size=2, atol=1e-3)
    assert_exact_histories(model, data, ptr, batch_size=2)


def test_gin_lipschitz_regularization():
    data, ptr = clustered()
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    model = make(data, 4, reg_weight=1.0)
    model.train()
    out = model(batch.data.x, batch.data.adj_t, batch)
    # Layers 1 and 2 read and write histories; 0 and 3 are not regularized.
    assert len(model._reg_terms) == 2
    reg = model.reg_loss
    assert reg.dim() == 0 and float(reg.detach()) > 0
    (out.sum() * 0 + reg).backward()
    for layer in (1, 2):
        grad = model.mlps[layer][0].weight.grad
        assert grad is not None and grad.abs().sum() > 0
    # The penalty also reaches earlier layers through its inputs, but never
    # the last layer's MLP.
    assert model.mlps[3][0].weight.grad.abs().sum() == 0

    model.eval()
    model(batch.data.x, batch.data.adj_t, batch)
    assert float(model.reg_loss) == 0
    model.train()
    model(batch.data.x, batch.data.adj_t, batch)
    assert float(model.reg_loss.detach()) > 0

    unregularized = make(data, 4).train()
    unregularized(batch.data.x, batch.data.adj_t, batch)
    assert float(unregularized.reg_loss) == 0

    # Two layers: no layer both reads and writes a history.
    with pytest.warns(UserWarning, match='records no Lipschitz penalty'):
        make(data, 2, reg_weight=1.0).train()(batch.data.x,
                                              batch.data.adj_t, batch)


def test_gin_training_reduces_loss():
    data, ptr = clustered(num_nodes=500, num_parts=8)
    model = make(data, 3, reg_weight=1.0)
    model.mini_inference(EvalSubgraphLoader(data, ptr), progress=False)
    losses = train_losses(model, data, ptr, 30, lr=0.005, reg_loss=True)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_gin_repr_and_errors():
    model = GIN(10, 3, 16, 2, num_layers=2)
    assert repr(model) == 'GIN(3, 2, hidden_channels=16, num_layers=2)'
    assert len(model.histories) == 1
    with pytest.raises(ValueError, match="'dropout'"):
        GIN(10, 3, 16, 2, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="'reg_weight'"):
        GIN(10, 3, 16, 2, num_layers=2, reg_weight=-1.0)
    with pytest.raises(ValueError, match="'num_layers'"):
        GIN(10, 3, 16, 2, num_layers=0)


def test_gin_param_groups():
    model = GIN(10, 3, 16, 2, num_layers=3)
    assert_param_groups_cover(model, model.param_groups(5e-4))
