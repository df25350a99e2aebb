import pytest
import torch

from torch_autoscale.nn.models.pna import degree_histogram
from torch_autoscale.nn.models.pna_jk import PNA_JK
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

AGGREGATORS = ['mean', 'max', 'std']
SCALERS = ['identity', 'amplification', 'attenuation']


def clustered(num_nodes=300, num_parts=6):
    return clustered_graph(num_nodes, num_parts, num_classes=4, avg_degree=6,
                           num_features=16)


def make(data, num_layers=2, **kwargs):
    return PNA_JK(data.num_nodes, data.num_features, 16, 4, num_layers,
                  AGGREGATORS, SCALERS, degree_histogram(data.adj_t),
                  **kwargs)


@pytest.mark.parametrize('options', [
    dict(),
    dict(jk='max', batch_norm=True, residual=True),
    dict(dropout=0.5, drop_input=True, batch_norm=True),
])
@pytest.mark.parametrize('num_layers', [1, 3])
def test_pna_jk_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered()
    model = fit_norm_statistics(make(data, num_layers, **options), data)
    full = assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert full.size() == (data.num_nodes, 4)
    assert_one_cluster_exact(model, data)


@pytest.mark.parametrize('jk', ['cat', 'max'])
def test_pna_jk_exact_histories_make_gas_exact(jk):
    data, ptr = clustered()
    model = make(data, 3, jk=jk, batch_norm=True, residual=True)
    assert_stale_histories_differ(model, data, ptr, batch_size=2, atol=1e-3)
    assert_exact_histories(model, data, ptr, batch_size=2)


def test_pna_jk_training_reduces_loss():
    data, ptr = clustered(num_nodes=500, num_parts=8)
    model = make(data, 2, batch_norm=True)
    losses = train_losses(model, data, ptr, 30, lr=0.005)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_pna_jk_repr_and_errors():
    data, _ = clustered()
    model = make(data, 3, jk='max')
    assert repr(model) == ('PNA_JK(16, 4, hidden_channels=16, num_layers=3, '
                           'jk=max)')
    assert [h.channels for h in model.histories] == [16, 16]
    assert model.lin_out.in_features == 16
    assert make(data, 3).lin_out.in_features == 4 * 16
    deg = degree_histogram(data.adj_t)
    with pytest.raises(ValueError, match="'jk'"):
        PNA_JK(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, deg, jk='lstm')
    with pytest.raises(ValueError, match="'scalers'"):
        PNA_JK(10, 3, 8, 2, 2, AGGREGATORS, ['log'], deg)
    with pytest.raises(ValueError, match="'deg'"):
        PNA_JK(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="'dropout'"):
        PNA_JK(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, deg, dropout=-0.1)


@pytest.mark.parametrize('batch_norm', [False, True])
def test_pna_jk_param_groups(batch_norm):
    data, _ = clustered()
    model = make(data, 2, batch_norm=batch_norm)
    reg, nonreg = model.param_groups(5e-4)
    assert_param_groups_cover(model, (reg, nonreg))
    assert any(p is model.lin_out.weight for p in nonreg['params'])
    assert any(p is model.convs[-1].lin.weight for p in reg['params'])
