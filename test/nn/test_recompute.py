import pytest
import torch

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.nn.models import APPNP, GCN, GraphSAGE
from torch_autoscale.testing import clustered_graph
from torch_autoscale.utils import StepMemory


def gcn_without_and_with(recompute, num_nodes, hidden, **kwargs):
    r"""The same three-layer GCN (same seed) without recomputation, then
    with the :obj:`recompute` flags, and a batch of two of its clusters."""
    data, ptr = clustered_graph(num_nodes, num_parts=num_nodes // 100,
                                adj='gcn_norm')
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    for flags in (None, recompute):
        torch.manual_seed(0)
        yield GCN(data.num_nodes, data.num_features, hidden, 4, 3,
                  dropout=0.5, recompute=flags, **kwargs), batch


def test_recompute_matches_and_saves_memory():
    results = []
    for model, batch in gcn_without_and_with([True, True, True], 600, 32):
        with StepMemory('cpu') as mem:
            out = model(batch.data.x, batch.data.adj_t, batch)
        out.square().mean().backward()
        grads = [p.grad.clone() for p in model.parameters()
                 if p.grad is not None]
        results.append((out.detach(), grads, mem.peak_bytes))
    (out0, grads0, mem0), (out1, grads1, mem1) = results
    assert torch.equal(out0, out1)  # Same dropout masks.
    for a, b in zip(grads0, grads1):
        assert torch.allclose(a, b, atol=1e-6)
    assert mem1 < 0.7 * mem0
    with pytest.raises(ValueError, match='one flag per layer'):
        GCN(10, 4, 8, 2, 3, recompute=[True])
    with pytest.raises(ValueError, match='cannot recompute'):
        layers = APPNP(10, 4, 8, 2, 3, alpha=0.1).num_layers
        APPNP(10, 4, 8, 2, 3, alpha=0.1, recompute=[True] * layers)


def test_recompute_in_training_only_and_for_every_basic_model():
    data, ptr = clustered_graph(300, num_parts=3)
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=1)))
    model = GraphSAGE(data.num_nodes, data.num_features, 16, 3, 2,
                      recompute=[True, False])
    assert model.recompute == [True, False]
    out = model(batch.data.x, batch.data.adj_t, batch)
    out.sum().backward()
    model.eval()
    with StepMemory('cpu') as mem:  # No checkpointing in evaluation.
        model(batch.data.x, batch.data.adj_t, batch)
    assert mem.peak_bytes > 0


def test_recompute_updates_batch_norm_statistics_once():
    stats = []
    for model, batch in gcn_without_and_with([True, True, False], 400, 16,
                                             batch_norm=True):
        for _ in range(2):
            out = model(batch.data.x, batch.data.adj_t, batch)
            out.square().mean().backward()
        stats.append([b.clone() for b in model.bns.buffers()])
    assert len(stats[0]) == 6  # Mean, variance and count of two norms.
    for a, b in zip(*stats):
        assert torch.allclose(a, b, atol=1e-6)
    # Two steps: the count of a batch norm says how often it was updated.
    assert int(stats[1][2]) == 2
