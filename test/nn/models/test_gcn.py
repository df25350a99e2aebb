import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def clustered(num_nodes, num_parts, seed=0, **kwargs):
    data = homophilous_sbm(num_nodes, seed=seed, **kwargs)
    data.adj_t, _ = gcn_norm(csr_adj_t(data.edge_index, num_nodes))
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


@pytest.mark.parametrize('options', [
    dict(),
    dict(batch_norm=True),
    dict(residual=True),
    dict(linear=True, batch_norm=True, residual=True),
])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_gcn_mini_inference_equals_full_batch(options, num_layers):
    data, ptr = clustered(500, 6)
    model = GCN(data.num_nodes, data.num_features, 16, 8, num_layers,
                dropout=0.5, **options)
    # Fit batch-norm statistics to something non-trivial first.
    model.train()
    model(data.x, data.adj_t)
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


def test_gcn_repr_and_errors():
    model = GCN(10, 3, 16, 2, num_layers=2)
    assert repr(model) == 'GCN(3, 2, hidden_channels=16, num_layers=2)'
    assert len(model.histories) == 1
    with pytest.raises(ValueError, match="'dropout'"):
        GCN(10, 3, 16, 2, num_layers=2, dropout=1.5)


def test_gcn_trains_far_above_chance():
    data, ptr = clustered(4000, 16, num_classes=8)
    model = GCN(data.num_nodes, data.num_features, 32, 8, num_layers=2,
                dropout=0.5, drop_input=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    loader = SubgraphLoader(data, ptr, batch_size=4, shuffle=True)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=4)
    model.mini_inference(eval_loader, progress=False)
    for _ in range(40):
        model.train()
        for batch in loader:
            opt.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            mask = batch.data.train_mask[:batch.batch_size]
            loss = F.cross_entropy(out[mask], batch.data.y[:batch.batch_size]
                                   [mask])
            loss.backward()
            opt.step()
    out = model.mini_inference(eval_loader, progress=False)
    acc = (out.argmax(-1) == data.y)[data.test_mask].float().mean()
    assert acc > 0.6  # chance is 0.125


@pytest.mark.parametrize('linear', [False, True])
def test_gcn_param_groups(linear):
    model = GCN(10, 3, 16, 2, num_layers=3, batch_norm=True, linear=linear)
    reg, nonreg = model.param_groups(5e-4, 1e-5)
    assert reg['weight_decay'] == 5e-4 and nonreg['weight_decay'] == 1e-5
    ids = [id(p) for g in (reg, nonreg) for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    last = model.lins[1].weight if linear else model.convs[-1].lin.weight
    assert any(p is last for p in nonreg['params'])
