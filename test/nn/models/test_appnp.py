import pytest
import torch
from torch_geometric.nn import APPNP as PyGAPPNP

from torch_autoscale.nn.models.appnp import APPNP
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    clustered_graph,
    param_ids,
    train_losses,
)


def clustered(num_nodes=500, num_parts=6):
    return clustered_graph(num_nodes, num_parts, 'gcn_norm', num_classes=4)


@pytest.mark.parametrize('num_layers', [1, 2, 10])
def test_appnp_mini_inference_equals_full_batch(num_layers):
    data, ptr = clustered()
    model = APPNP(data.num_nodes, data.num_features, 16, 4, num_layers,
                  alpha=0.1, dropout=0.5)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_appnp_matches_pyg_propagation():
    data, _ = clustered()
    model = APPNP(data.num_nodes, data.num_features, 16, 4, num_layers=5,
                  alpha=0.2).eval()
    prop = PyGAPPNP(K=5, alpha=0.2, normalize=False)
    h = model.lins[1](model.lins[0](data.x).relu())
    assert torch.allclose(model(data.x, data.adj_t), prop(h, data.adj_t),
                          atol=1e-5)


def test_appnp_fresh_histories_make_gas_exact():
    data, ptr = clustered()
    model = APPNP(data.num_nodes, data.num_features, 16, 4, num_layers=4,
                  alpha=0.1, dropout=0.5)
    # Square adj_t with empty halo rows too.
    assert_exact_histories(model, data, ptr, bipartite=(True, False))


def test_appnp_training_reduces_loss():
    data, ptr = clustered(num_parts=8)
    model = APPNP(data.num_nodes, data.num_features, 32, 4, num_layers=5,
                  alpha=0.1, dropout=0.2)
    losses = train_losses(model, data, ptr, 15,
                          params=model.param_groups(5e-3))
    assert losses[-1] < 0.5 * losses[0]


def test_appnp_widths_repr_and_errors():
    model = APPNP(10, 3, 16, 2, num_layers=10, alpha=0.1, reg_weight=0.5)
    assert [h.channels for h in model.histories] == [2] * 9
    assert model.reg_weight == 0.5
    assert repr(model) == ('APPNP(3, 2, hidden_channels=16, num_layers=10, '
                           'alpha=0.1)')
    # Weight decay on the first linear layer only.
    reg, nonreg = model.param_groups(5e-3)
    assert reg['weight_decay'] == 5e-3 and nonreg['weight_decay'] == 0.0
    assert param_ids(reg['params']) == param_ids(model.lins[0].parameters())
    assert_param_groups_cover(model, (reg, nonreg))

    with pytest.raises(ValueError, match="'alpha'"):
        APPNP(10, 3, 16, 2, num_layers=2, alpha=1.5)
    with pytest.raises(ValueError, match="'dropout'"):
        APPNP(10, 3, 16, 2, num_layers=2, alpha=0.1, dropout=-0.1)
    with pytest.raises(ValueError, match="'num_layers'"):
        APPNP(10, 3, 16, 2, num_layers=0, alpha=0.1)


def test_appnp_sparse_features():
    data, ptr = clustered(num_nodes=300, num_parts=4)
    model = APPNP(data.num_nodes, data.num_features, 16, 4, num_layers=3,
                  alpha=0.1, dropout=0.5)
    assert_sparse_input_exact(model, data, ptr)
