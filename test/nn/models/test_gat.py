import pytest
import torch

from torch_autoscale.loader import EvalSubgraphLoader
from torch_autoscale.nn.models.gat import GAT
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    clustered_graph,
    train_losses,
)


def clustered(num_nodes=500, num_parts=6, normalize=False):
    # No self-loops; or self-loops and edge weights, as for a GCN.
    adj = 'gcn_norm' if normalize else 'raw'
    return clustered_graph(num_nodes, num_parts, adj, num_classes=4)


@pytest.mark.parametrize('num_layers,heads', [(1, (1, 1)), (2, (4, 1)),
                                              (3, (2, 3))])
def test_gat_mini_inference_equals_full_batch(num_layers, heads):
    data, ptr = clustered()
    model = GAT(data.num_nodes, data.num_features, 8, heads[0], 4, heads[1],
                num_layers, dropout=0.5)
    full = assert_mini_inference_exact(model, data, ptr, batch_size=2)
    assert full.size() == (data.num_nodes, 4)
    assert_one_cluster_exact(model, data)


def test_gat_fresh_histories_make_gas_exact():
    data, ptr = clustered()
    model = GAT(data.num_nodes, data.num_features, 8, 2, 4, 2, num_layers=3,
                dropout=0.5)
    # Square adj_t with empty halo rows too.
    assert_exact_histories(model, data, ptr, bipartite=(True, False))


def test_gat_self_loops_and_edge_values_do_not_matter():
    # Every node attends to itself exactly once, whether or not the data
    # holds self-loops; edge weights are ignored. Full-batch and GAS agree.
    plain, ptr = clustered()
    normalized, _ = clustered(normalize=True)
    model = GAT(plain.num_nodes, plain.num_features, 8, 2, 4, 1,
                num_layers=2).eval()
    full = model(plain.x, plain.adj_t)
    assert torch.allclose(model(normalized.x, normalized.adj_t), full,
                          atol=1e-6)
    for data in (plain, normalized):
        out = model.mini_inference(EvalSubgraphLoader(data, ptr, 3),
                                   progress=False)
        assert torch.allclose(out, full, atol=1e-5)


def test_gat_training_reduces_loss():
    data, ptr = clustered(num_parts=8)
    model = GAT(data.num_nodes, data.num_features, 8, 4, 4, 1, num_layers=2,
                dropout=0.2)
    losses = train_losses(model, data, ptr, 8,
                          params=model.param_groups(5e-4))
    assert losses[-1] < 0.5 * losses[0]


def test_gat_widths_repr_and_errors():
    model = GAT(10, 3, 8, 4, 2, 6, num_layers=3, reg_weight=0.5)
    assert [h.channels for h in model.histories] == [32, 32]
    assert model.reg_weight == 0.5
    assert repr(model) == ('GAT(3, 2, hidden_channels=8, hidden_heads=4, '
                           'out_heads=6, num_layers=3)')
    assert model.convs[-1].heads == 6 and not model.convs[-1].concat
    # Every parameter has weight decay.
    groups = model.param_groups(5e-4)
    assert len(groups) == 1
    assert_param_groups_cover(model, groups)
    assert groups[0]['weight_decay'] == 5e-4

    with pytest.raises(ValueError, match="'hidden_heads'"):
        GAT(10, 3, 8, 0, 2, 1, num_layers=2)
    with pytest.raises(ValueError, match="'out_heads'"):
        GAT(10, 3, 8, 2, 2, 1.5, num_layers=2)
    with pytest.raises(ValueError, match="'dropout'"):
        GAT(10, 3, 8, 2, 2, 1, num_layers=2, dropout=1.0)
    with pytest.raises(ValueError, match="'num_layers'"):
        GAT(10, 3, 8, 2, 2, 1, num_layers=0)
    with pytest.raises(ValueError, match="'adj_t'"):
        model(torch.randn(10, 3), torch.zeros(2, 0, dtype=torch.long))


def test_gat_sparse_features():
    data, ptr = clustered(num_nodes=300, num_parts=4)
    model = GAT(data.num_nodes, data.num_features, 8, 2, 4, 1, num_layers=2,
                dropout=0.5)
    assert_sparse_input_exact(model, data, ptr)
