import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import APPNP as PyGAPPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models.appnp import APPNP
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def clustered(num_nodes=500, num_parts=6, seed=0):
    data = homophilous_sbm(num_nodes, num_classes=4, seed=seed)
    data.adj_t, _ = gcn_norm(csr_adj_t(data.edge_index, num_nodes))
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


@pytest.mark.parametrize('num_layers', [1, 2, 10])
def test_appnp_mini_inference_equals_full_batch(num_layers):
    data, ptr = clustered()
    model = APPNP(data.num_nodes, data.num_features, 16, 4, num_layers,
                  alpha=0.1, dropout=0.5).eval()
    full = model(data.x, data.adj_t)
    out = model.mini_inference(EvalSubgraphLoader(data, ptr, batch_size=2),
                               progress=False)
    assert torch.allclose(out, full, atol=1e-5)

    # One cluster per batch covering the graph reproduces full-batch.
    single = torch.tensor([0, data.num_nodes])
    batch = next(iter(SubgraphLoader(data, single)))
    assert torch.allclose(model(batch.data.x, batch.data.adj_t, batch), full,
                          atol=1e-5)


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
                  alpha=0.1, dropout=0.5).eval()
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


def test_appnp_training_reduces_loss():
    data, ptr = clustered(num_parts=8)
    model = APPNP(data.num_nodes, data.num_features, 32, 4, num_layers=5,
                  alpha=0.1, dropout=0.2)
    opt = torch.optim.Adam(model.param_groups(5e-3), lr=0.01)
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=True)
    losses = []
    for _ in range(15):
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


def test_appnp_widths_repr_and_errors():
    model = APPNP(10, 3, 16, 2, num_layers=10, alpha=0.1, reg_weight=0.5)
    assert [h.channels for h in model.histories] == [2] * 9
    assert model.reg_weight == 0.5
    assert repr(model) == ('APPNP(3, 2, hidden_channels=16, num_layers=10, '
                           'alpha=0.1)')
    # Weight decay on the first linear layer only.
    reg, nonreg = model.param_groups(5e-3)
    assert reg['weight_decay'] == 5e-3 and nonreg['weight_decay'] == 0.0
    assert {id(p) for p in reg['params']} == {
        id(p) for p in model.lins[0].parameters()}
    assert len(reg['params']) + len(nonreg['params']) == len(
        list(model.parameters()))

    with pytest.raises(ValueError, match="'alpha'"):
        APPNP(10, 3, 16, 2, num_layers=2, alpha=1.5)
    with pytest.raises(ValueError, match="'dropout'"):
        APPNP(10, 3, 16, 2, num_layers=2, alpha=0.1, dropout=-0.1)
    with pytest.raises(ValueError, match="'num_layers'"):
        APPNP(10, 3, 16, 2, num_layers=0, alpha=0.1)
