import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import PNAConv

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.nn.models.pna import (
    PNA,
    BipartitePNAConv,
    degree_histogram,
)
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_stale_histories_differ,
    clustered_graph,
    fit_norm_statistics,
    param_ids,
    train_losses,
)

AGGREGATORS = ['mean', 'min', 'max', 'std']
SCALERS = ['identity', 'amplification', 'attenuation']


def clustered(num_nodes=300, num_parts=6):
    return clustered_graph(num_nodes, num_parts, num_classes=4, avg_degree=6,
                           num_features=16)


def make(data, num_layers=2, **kwargs):
    return PNA(data.num_nodes, data.num_features, 16, 4, num_layers,
               AGGREGATORS, SCALERS, degree_histogram(data.adj_t), **kwargs)


def test_degree_histogram():
    data, _ = clustered()
    deg = degree_histogram(data.adj_t)
    assert deg.dtype == torch.long and int(deg.sum()) == data.num_nodes
    assert torch.equal(degree_histogram(data.edge_index, data.num_nodes), deg)
    ref = PNAConv.get_degree_histogram([Data(edge_index=data.edge_index,
                                             num_nodes=data.num_nodes)])
    assert torch.equal(deg, ref)
    assert PNA.degree_histogram is degree_histogram
    # Isolated last nodes count once num_nodes is given:
    edge_index = torch.tensor([[0, 1], [1, 0]])
    assert degree_histogram(edge_index, 4).tolist() == [2, 2]
    bipartite = next(iter(SubgraphLoader(data, torch.tensor(
        [0, 10, data.num_nodes])))).data.adj_t
    with pytest.raises(ValueError, match='square'):
        degree_histogram(bipartite)
    with pytest.raises(ValueError, match="'adj'"):
        degree_histogram(data.x)


def test_bipartite_conv_matches_pyg():
    data, _ = clustered()
    deg = degree_histogram(data.adj_t)
    ref = PNAConv(16, 8, AGGREGATORS, SCALERS + ['linear'], deg, towers=2)
    conv = BipartitePNAConv(16, 8, AGGREGATORS, SCALERS + ['linear'], deg,
                            towers=2)
    conv.load_state_dict(ref.state_dict())
    expected = ref(data.x, data.edge_index)
    assert torch.allclose(conv(data.x, data.adj_t), expected, atol=1e-5)
    assert torch.allclose(conv(data.x, data.edge_index), expected, atol=1e-5)
    # A bipartite batch: rows are the in-batch nodes, columns all of n_id.
    batch = next(iter(SubgraphLoader(data, torch.tensor(
        [0, 50, data.num_nodes]))))
    x = batch.data.x
    out = conv((x, x[:batch.batch_size]), batch.data.adj_t)
    assert out.size(0) == batch.batch_size
    assert torch.allclose(out, expected[batch.n_id[:batch.batch_size]],
                          atol=1e-5)


@pytest.mark.parametrize('options', [
    dict(),
    dict(batch_norm=True, residual=True),
    dict(dropout=0.5, drop_input=True),
])
@pytest.mark.parametrize('num_layers', [1, 3])
def test_pna_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered()
    model = fit_norm_statistics(make(data, num_layers, **options), data)
    assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert_one_cluster_exact(model, data)


def test_pna_exact_histories_make_gas_exact():
    data, ptr = clustered()
    model = make(data, 3, batch_norm=True, residual=True)
    assert_stale_histories_differ(model, data, ptr, batch_size=2, atol=1e-3)
    assert_exact_histories(model, data, ptr, batch_size=2)


def test_pna_training_reduces_loss():
    data, ptr = clustered(num_nodes=500, num_parts=8)
    model = make(data, 2, batch_norm=True)
    losses = train_losses(model, data, ptr, 30, lr=0.005)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_pna_repr_and_errors():
    data, _ = clustered()
    model = make(data)
    assert repr(model) == (
        "PNA(16, 4, hidden_channels=16, num_layers=2, aggregators=['mean', "
        "'min', 'max', 'std'], scalers=['identity', 'amplification', "
        "'attenuation'])")
    assert len(model.histories) == 1
    deg = degree_histogram(data.adj_t)
    PNA(10, 3, 8, 2, 2, 'mean', 'identity', deg)  # Single strings work.
    with pytest.raises(ValueError, match="'aggregators'"):
        PNA(10, 3, 8, 2, 2, ['median'], SCALERS, deg)
    with pytest.raises(ValueError, match="'aggregators'"):
        PNA(10, 3, 8, 2, 2, [], SCALERS, deg)
    with pytest.raises(ValueError, match="'scalers'"):
        PNA(10, 3, 8, 2, 2, AGGREGATORS, ['log'], deg)
    with pytest.raises(ValueError, match="'deg'"):
        PNA(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, torch.tensor([5]))
    with pytest.raises(ValueError, match="'deg'"):
        PNA(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, torch.ones(3, 3))
    with pytest.raises(ValueError, match="'dropout'"):
        PNA(10, 3, 8, 2, 2, AGGREGATORS, SCALERS, deg, dropout=1.0)
    with pytest.raises(ValueError, match="'num_layers'"):
        PNA(10, 3, 8, 2, 0, AGGREGATORS, SCALERS, deg)


def test_pna_param_groups():
    data, _ = clustered()
    model = make(data, 3, batch_norm=True)
    reg, nonreg = model.param_groups(5e-4, 1e-5)
    assert reg['weight_decay'] == 5e-4 and nonreg['weight_decay'] == 1e-5
    assert_param_groups_cover(model, (reg, nonreg))
    assert param_ids(nonreg['params']) == param_ids(
        model.convs[-1].parameters())
