import pytest

from torch_autoscale.loader import EvalSubgraphLoader
from torch_autoscale.nn.models.sage import GraphSAGE
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    assert_stale_histories_differ,
    clustered_graph,
    fit_norm_statistics,
    param_ids,
    sparse_features,
    train_losses,
)


def clustered(num_nodes=300, num_parts=6):
    return clustered_graph(num_nodes, num_parts, num_classes=4, avg_degree=6,
                           num_features=16)


def make(data, num_layers=2, **kwargs):
    return GraphSAGE(data.num_nodes, data.num_features, 16, 4, num_layers,
                     **kwargs)


@pytest.mark.parametrize('options', [
    dict(),
    dict(batch_norm=True, residual=True),
    dict(dropout=0.5),
])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_sage_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered()
    model = fit_norm_statistics(make(data, num_layers, **options), data)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_sage_exact_histories_make_gas_exact():
    data, ptr = clustered()
    model = make(data, 3, batch_norm=True, residual=True)
    assert_stale_histories_differ(model, data, ptr, batch_size=2, atol=1e-3)
    assert_exact_histories(model, data, ptr, batch_size=2)


def test_sage_training_reduces_loss():
    data, ptr = clustered(num_nodes=500, num_parts=8)
    model = make(data, 2, dropout=0.2)
    losses = train_losses(model, data, ptr, 15, lr=0.01)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_sage_repr_and_errors():
    model = GraphSAGE(10, 3, 16, 2, num_layers=3)
    assert repr(model) == 'GraphSAGE(3, 2, hidden_channels=16, num_layers=3)'
    assert len(model.histories) == 2
    assert model.convs[0].aggr == 'mean'
    with pytest.raises(ValueError, match="'dropout'"):
        GraphSAGE(10, 3, 16, 2, num_layers=2, dropout=1.0)
    with pytest.raises(ValueError, match="'num_layers'"):
        GraphSAGE(10, 3, 16, 2, num_layers=-1)


def test_sage_param_groups():
    model = GraphSAGE(10, 3, 16, 2, num_layers=3, batch_norm=True)
    reg, nonreg = model.param_groups(5e-4, 1e-5)
    assert_param_groups_cover(model, (reg, nonreg))
    assert param_ids(nonreg['params']) == param_ids(
        model.convs[-1].parameters())


def test_sage_sparse_features_need_a_linear_input_layer():
    data, ptr = clustered()
    assert_sparse_input_exact(make(data, linear=True, dropout=0.5), data, ptr)

    model = make(data)
    assert not model.supports_sparse_input
    _, sparse = sparse_features(data)
    with pytest.raises(ValueError, match="dense node features only"):
        model(sparse.x, sparse.adj_t)
    loader = EvalSubgraphLoader(sparse, ptr, batch_size=2)
    with pytest.raises(ValueError, match=r"x.to_dense\(\)"):
        model.mini_inference(loader, progress=False)
