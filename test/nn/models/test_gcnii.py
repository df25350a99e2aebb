import math

import pytest

from torch_autoscale.nn.models.gcnii import GCNII
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    clustered_graph,
    fit_norm_statistics,
    param_ids,
    train_losses,
)


def clustered(num_nodes=500, num_parts=6):
    return clustered_graph(num_nodes, num_parts, 'gcn_norm', num_classes=4)


@pytest.mark.parametrize('options', [
    dict(),
    dict(shared_weights=False),
    dict(batch_norm=True, drop_input=True),
    dict(shared_weights=False, batch_norm=True, residual=True),
])
@pytest.mark.parametrize('num_layers', [1, 2, 8])
def test_gcnii_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered()
    model = GCNII(data.num_nodes, data.num_features, 16, 4, num_layers,
                  alpha=0.1, theta=0.5, dropout=0.5, **options)
    fit_norm_statistics(model, data)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_gcnii_fresh_histories_make_gas_exact():
    data, ptr = clustered()
    model = GCNII(data.num_nodes, data.num_features, 16, 4, num_layers=4,
                  alpha=0.1, theta=0.5, shared_weights=False, residual=True)
    # Square adj_t with empty halo rows too.
    assert_exact_histories(model, data, ptr, bipartite=(True, False))


def test_gcnii_training_reduces_loss():
    data, ptr = clustered(num_parts=8)
    model = GCNII(data.num_nodes, data.num_features, 32, 4, num_layers=4,
                  alpha=0.1, theta=0.5, dropout=0.2)
    losses = train_losses(model, data, ptr, 15,
                          params=model.param_groups(0.01, 5e-4))
    assert losses[-1] < 0.5 * losses[0]


def test_gcnii_widths_repr_and_errors():
    model = GCNII(10, 3, 16, 2, num_layers=4, alpha=0.1, theta=0.5,
                  shared_weights=False, reg_weight=0.5)
    assert [h.channels for h in model.histories] == [16] * 3
    assert model.reg_weight == 0.5
    assert repr(model) == ('GCNII(3, 2, hidden_channels=16, num_layers=4, '
                           'alpha=0.1, theta=0.5)')
    # Identity mapping strength beta_l = log(theta / l + 1), l = 1, 2, ...
    for layer, conv in enumerate(model.convs, start=1):
        assert math.isclose(conv.beta, math.log(0.5 / layer + 1))
        assert conv.weight2 is not None
    assert GCNII(10, 3, 16, 2, 2, 0.1, 0.5).convs[0].weight2 is None
    # Convolutions (and batch norms) and linear layers are decayed apart.
    reg, nonreg = model.param_groups(0.01, 5e-4)
    assert (reg['weight_decay'], nonreg['weight_decay']) == (0.01, 5e-4)
    assert param_ids(nonreg['params']) == param_ids(model.lins.parameters())
    assert_param_groups_cover(model, (reg, nonreg))

    with pytest.raises(ValueError, match="'alpha'"):
        GCNII(10, 3, 16, 2, num_layers=2, alpha=-0.1, theta=0.5)
    with pytest.raises(ValueError, match="'theta'"):
        GCNII(10, 3, 16, 2, num_layers=2, alpha=0.1, theta=0.0)
    with pytest.raises(ValueError, match="'dropout'"):
        GCNII(10, 3, 16, 2, num_layers=2, alpha=0.1, theta=0.5, dropout=1.0)
    with pytest.raises(ValueError, match="'num_layers'"):
        GCNII(10, 3, 16, 2, num_layers=0, alpha=0.1, theta=0.5)


def test_gcnii_sparse_features():
    data, ptr = clustered(num_nodes=300, num_parts=4)
    model = GCNII(data.num_nodes, data.num_features, 16, 4, num_layers=3,
                  alpha=0.1, theta=0.5, dropout=0.5, drop_input=True)
    assert_sparse_input_exact(model, data, ptr)
