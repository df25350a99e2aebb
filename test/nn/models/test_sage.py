import pytest
import torch
import torch.nn.functional as F

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models.sage import GraphSAGE
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def clustered(num_nodes=300, num_parts=6, seed=0):
    data = homophilous_sbm(num_nodes, num_classes=4, avg_degree=6,
                           num_features=16, seed=seed)
    data.adj_t = csr_adj_t(data.edge_index, num_nodes)
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


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
    model = make(data, num_layers, **options)
    model.train()
    model(data.x, data.adj_t)  # Non-trivial batch-norm statistics.
    model.eval()
    full = model(data.x, data.adj_t)
    out = model.mini_inference(EvalSubgraphLoader(data, ptr, batch_size=2),
                               progress=False)
    assert torch.allclose(out, full, atol=1e-5)

    # One cluster per batch covering the graph reproduces full-batch.
    single = torch.tensor([0, data.num_nodes])
    batch = next(iter(SubgraphLoader(data, single)))
    assert torch.allclose(model(batch.data.x, batch.data.adj_t, batch), full,
                          atol=1e-5)


def test_sage_exact_histories_make_gas_exact():
    data, ptr = clustered()
    model = make(data, 3, batch_norm=True, residual=True).eval()
    full = model(data.x, data.adj_t)
    # Zero (stale) histories: the halo is visible in the output.
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    stale = model(batch.data.x, batch.data.adj_t, batch)
    assert not torch.allclose(stale, full[batch.n_id[:batch.batch_size]],
                              atol=1e-3)
    # Exact histories: GAS reproduces full-batch on every batch.
    model.mini_inference(EvalSubgraphLoader(data, ptr), progress=False)
    for batch in SubgraphLoader(data, ptr, batch_size=2, shuffle=True):
        assert batch.n_id.numel() > batch.batch_size  # there is a halo
        out = model(batch.data.x, batch.data.adj_t, batch)
        expected = full[batch.n_id[:batch.batch_size]]
        assert torch.allclose(out, expected, atol=1e-5)


def test_sage_training_reduces_loss():
    data, ptr = clustered(num_nodes=500, num_parts=8)
    model = make(data, 2, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
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
    ids = [id(p) for g in (reg, nonreg) for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    last = {id(p) for p in model.convs[-1].parameters()}
    assert {id(p) for p in nonreg['params']} == last
