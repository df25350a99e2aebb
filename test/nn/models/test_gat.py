import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models.gat import GAT
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def clustered(num_nodes=500, num_parts=6, normalize=False, seed=0):
    data = homophilous_sbm(num_nodes, num_classes=4, seed=seed)
    data.adj_t = csr_adj_t(data.edge_index, num_nodes)  # no self-loops
    if normalize:  # self-loops and edge weights, as for a GCN
        data.adj_t, _ = gcn_norm(data.adj_t)
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


@pytest.mark.parametrize('num_layers,heads', [(1, (1, 1)), (2, (4, 1)),
                                              (3, (2, 3))])
def test_gat_mini_inference_equals_full_batch(num_layers, heads):
    data, ptr = clustered()
    model = GAT(data.num_nodes, data.num_features, 8, heads[0], 4, heads[1],
                num_layers, dropout=0.5).eval()
    full = model(data.x, data.adj_t)
    assert full.size() == (data.num_nodes, 4)
    out = model.mini_inference(EvalSubgraphLoader(data, ptr, batch_size=2),
                               progress=False)
    assert torch.allclose(out, full, atol=1e-5)

    # One cluster per batch covering the graph reproduces full-batch.
    single = torch.tensor([0, data.num_nodes])
    batch = next(iter(SubgraphLoader(data, single)))
    assert torch.allclose(model(batch.data.x, batch.data.adj_t, batch), full,
                          atol=1e-5)


def test_gat_fresh_histories_make_gas_exact():
    data, ptr = clustered()
    model = GAT(data.num_nodes, data.num_features, 8, 2, 4, 2, num_layers=3,
                dropout=0.5).eval()
    full = model(data.x, data.adj_t)
    model.mini_inference(EvalSubgraphLoader(data, ptr), progress=False)
    for bipartite in (True, False):  # square adj_t with empty halo rows too
        for batch in SubgraphLoader(data, ptr, batch_size=2, shuffle=True,
                                    bipartite=bipartite):
            assert batch.n_id.numel() > batch.batch_size  # there is a halo
            out = model(batch.data.x, batch.data.adj_t, batch)
            expected = full[batch.n_id[:batch.batch_size]]
            assert torch.allclose(out[:batch.batch_size], expected,
                                  atol=1e-5)


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
    opt = torch.optim.Adam(model.param_groups(5e-4), lr=0.01)
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=True)
    losses = []
    for _ in range(8):
        model.train()
        total = 0.0
        for batch in loader:
            opt.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            loss = F.cross_entropy(out, batch.data.y[:batch.batch_size])
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total)
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
    assert [len(g['params']) for g in groups] == [
        len(list(model.parameters()))]
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
