import warnings

import pytest
import torch
from torch.nn import ModuleList
from torch_geometric.nn import GCNConv, SAGEConv

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn import ScalableGNN
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_stale_histories_differ,
    clustered_graph,
    onlyCUDA,
    param_ids,
    train_losses,
)


class SAGE(ScalableGNN):
    r"""A user-written model with a different width per layer."""
    def __init__(self, num_nodes, widths, **kwargs):
        super().__init__(num_nodes, widths[1:-1], len(widths) - 1, **kwargs)
        self.convs = ModuleList([
            SAGEConv(i, o) for i, o in zip(widths[:-1], widths[1:])
        ])

    def forward(self, x, adj_t, batch=None):
        for conv, history in zip(self.convs[:-1], self.histories):
            x = conv((x, x[:adj_t.size(0)]), adj_t).relu()
            x = self.push_and_pull(history, x, batch)
        return self.convs[-1]((x, x[:adj_t.size(0)]), adj_t)

    def forward_layer(self, layer, x, adj_t, state):
        h = self.convs[layer]((x, x[:adj_t.size(0)]), adj_t)
        return h.relu() if layer < self.num_layers - 1 else h


def clustered(num_nodes=400, num_parts=8):
    return clustered_graph(num_nodes, num_parts, 'gcn_norm', num_classes=4,
                           avg_degree=6)


def test_widths_and_histories():
    model = SAGE(100, [5, 16, 8, 3])
    assert [h.channels for h in model.histories] == [16, 8]
    assert model.num_layers == 3
    with pytest.raises(ValueError, match="'hidden_channels' lists 1"):
        ScalableGNN(100, [16], num_layers=3)
    with pytest.raises(ValueError, match='together'):
        ScalableGNN(100, 16, num_layers=2, pool_size=2)
    with pytest.raises(ValueError, match="'num_layers'"):
        ScalableGNN(100, 16, num_layers=0)
    with pytest.raises(NotImplementedError, match='forward_layer'):
        ScalableGNN(10, 4, 2).forward_layer(0, None, None, {})


def test_one_cluster_per_batch_equals_full_batch(backend):
    data, _ = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 16, 12, 4])
    assert_one_cluster_exact(model, data)


def test_mini_inference_equals_full_batch(backend):
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 16, 12, 4])
    model.train()
    for batch_size in (1, 3):  # Switches to evaluation mode first.
        assert_mini_inference_exact(model, data, ptr, batch_size=batch_size)
        # Every history now holds exact embeddings of its layer.
    assert not model.training


def test_fresh_histories_make_gas_exact():
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 16, 4])
    assert_exact_histories(model, data, ptr, batch_size=2)


def test_stale_histories_differ_and_push_updates():
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 16, 4])
    # Zero histories; torch.allclose's default tolerance.
    batch = assert_stale_histories_differ(model, data, ptr, batch_size=1,
                                          atol=1e-8)
    # The forward pushed the in-batch layer-1 embeddings.
    h = model.histories[0].pull(batch.n_id[:batch.batch_size])
    assert h.abs().sum() > 0


def test_hooks_and_device_placement():
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 8, 4])
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(o.size(0)))
    batch = next(iter(SubgraphLoader(data, ptr)))
    model(batch.data.x, batch.data.adj_t, batch=batch)
    model(data.x, data.adj_t)
    assert calls == [batch.batch_size, data.num_nodes]
    model.to('meta')
    assert model.histories[0].emb.device.type == 'cpu'
    assert model.histories[0].device.type == 'meta'
    assert model.convs[0].lin_l.weight.device.type == 'meta'


def test_training_reduces_loss():
    data, ptr = clustered(num_nodes=600)
    model = SAGE(data.num_nodes, [data.num_features, 32, 4])
    losses = train_losses(model, data, ptr, 30, lr=0.01)
    assert losses[-1] < 0.7 * losses[0]


def test_gcn_conv_with_csr_matches_edge_index():
    data, _ = clustered()
    conv = GCNConv(data.num_features, 8, normalize=False)
    adj = data.adj_t
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    row = torch.repeat_interleave(torch.arange(crow.numel() - 1),
                                  crow[1:] - crow[:-1])
    ref = conv(data.x, torch.stack([col, row]), val)
    assert torch.allclose(conv(data.x, adj), ref, atol=1e-5)


@onlyCUDA
def test_async_pool_matches_synchronous_path():
    data, ptr = clustered()
    loader = SubgraphLoader(data, ptr, batch_size=2)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    widths = [data.num_features, 16, 12, 4]
    sync = SAGE(data.num_nodes, widths).cuda()
    pool = SAGE(data.num_nodes, widths, pool_size=2,
                buffer_size=eval_loader.required_buffer_size()).cuda()
    pool.load_state_dict(sync.state_dict())
    assert pool.histories[0].emb.is_pinned()
    assert pool.histories[0].emb.device.type == 'cpu'

    full = sync.eval()(data.x.cuda(), data.adj_t.cuda()).cpu()
    for model in (sync, pool):
        out = model.mini_inference(eval_loader, progress=False)
        assert torch.allclose(out, full, atol=1e-4)

    # GAS steps: the same outputs and the same history contents.
    for batch in loader:
        batch = batch.to('cuda')
        outs = [m(batch.data.x, batch.data.adj_t, batch) for m in (sync, pool)]
        assert not pool.histories._async  # Pushes synchronized by the hook.
        assert torch.equal(outs[0], outs[1])
        for a, b in zip(sync.histories, pool.histories):
            assert torch.equal(a.emb, b.emb)


@onlyCUDA
def test_async_pool_buffer_too_small():
    data, ptr = clustered()
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    model = SAGE(data.num_nodes, [data.num_features, 16, 4], pool_size=2,
                 buffer_size=4).cuda()
    with pytest.raises(ValueError, match='buffer_size >='):
        model.mini_inference(eval_loader, progress=False)


def test_param_groups_cover_every_parameter():
    class Model(SAGE):
        def __init__(self):
            super().__init__(10, [4, 8, 2])
            self.scale = torch.nn.Parameter(torch.ones(1))

        @property
        def nonreg_modules(self):
            return [self.convs[-1]]

    model = Model()
    reg, nonreg = model.param_groups(0.1, 0.2)
    assert_param_groups_cover(model, (reg, nonreg))
    assert any(p is model.scale for p in reg['params'])
    assert param_ids(nonreg['params']) == param_ids(
        model.convs[-1].parameters())
    assert len(SAGE(10, [4, 8, 2]).param_groups(0.1)) == 1


@onlyCUDA
def test_async_pool_inference_frees_every_batch_output():
    # Pushed rows are released once copied to the host: layer-wise inference
    # holds a few batches on the GPU, not a whole layer's output.
    data, ptr = clustered(num_nodes=4000, num_parts=40)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=1)
    width = 512
    model = SAGE(data.num_nodes, [data.num_features, width, 4], pool_size=2,
                 buffer_size=eval_loader.required_buffer_size()).cuda()
    model.mini_inference(eval_loader, progress=False)  # Allocates the pool.
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model.mini_inference(eval_loader, progress=False)
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < data.num_nodes * width * 4 / 2


# Common mistakes get a message that says what to do (issue 19, section 2) ##


class Forgetful(SAGE):
    r"""A model that forgets 'push_and_pull'."""
    def forward(self, x, adj_t, batch=None):
        for conv in self.convs[:-1]:
            x = conv((x, x[:adj_t.size(0)]), adj_t).relu()
        return self.convs[-1]((x, x[:adj_t.size(0)]), adj_t)


def test_forgotten_push_and_pull_is_named():
    data, ptr = clustered()
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    model = Forgetful(data.num_nodes, [data.num_features, 16, 4])
    with pytest.raises(RuntimeError, match="never called 'self.push_and_pu"):
        model(batch.data.x, batch.data.adj_t, batch)
    # Full-batch needs no histories; one-layer models have none.
    assert model(data.x, data.adj_t).size(0) == data.num_nodes
    one = Forgetful(data.num_nodes, [data.num_features, 4])
    assert one(batch.data.x, batch.data.adj_t, batch).size(0) == \
        batch.batch_size


def test_forgotten_batch_is_named():
    data, ptr = clustered()
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    model = SAGE(data.num_nodes, [data.num_features, 16, 4])
    with pytest.raises(ValueError, match='without its batch'):
        model(batch.data.x, batch.data.adj_t)


def test_edge_index_or_batch_in_place_of_adj_t():
    data, ptr = clustered()
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    model = SAGE(data.num_nodes, [data.num_features, 16, 4])
    edge_index = torch.stack([data.adj_t.col_indices(),
                              data.adj_t.col_indices()])
    with pytest.raises(ValueError, match="got an 'edge_index'.*csr_adj_t"):
        model(data.x, edge_index)
    with pytest.raises(TypeError, match='batch.data.adj_t, batch'):
        model(batch.data.x, batch)
    with pytest.raises(TypeError, match='not a SubgraphBatch'):
        model(batch, batch.data.adj_t, batch)


def test_wrong_in_channels_is_named():
    from torch_autoscale.nn.models import GCN
    data, ptr = clustered()
    model = GCN(data.num_nodes, data.num_features + 2, 16, 4, num_layers=2)
    with pytest.raises(ValueError, match='built with in_channels='):
        model(data.x, data.adj_t)


def test_wrong_num_nodes_is_named():
    data, ptr = clustered()
    batch = list(SubgraphLoader(data, ptr, batch_size=2))[-1]
    model = SAGE(100, [data.num_features, 16, 4])
    with pytest.raises(ValueError, match='num_nodes=100 but the mini-batch'):
        model(batch.data.x, batch.data.adj_t, batch)
    model = SAGE(data.num_nodes, [data.num_features, 16, 4])
    with pytest.raises(ValueError, match="pass the batch's own features"):
        model(data.x, batch.data.adj_t, batch)


def test_unnormalized_adjacency_warns_for_gcn():
    from torch_autoscale.nn.models import GCN
    data, ptr = clustered_graph(400, 8, 'raw', num_classes=4, avg_degree=6)
    model = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=2)
    with pytest.warns(UserWarning, match='looks unnormalized.*gcn_norm'):
        model(data.x, data.adj_t)
    normalized, _ = clustered()
    model = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model(normalized.x, normalized.adj_t)


class SparseTensor:
    r"""Stands in for :class:`torch_sparse.SparseTensor` (not on PyPI): the
    models convert any adjacency of that name through its
    :meth:`to_torch_sparse_csr_tensor`."""
    def __init__(self, csr):
        self.csr = csr

    def to_torch_sparse_csr_tensor(self):
        return self.csr


def test_sparse_tensor_adjacency_is_converted():
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 16, 4]).eval()
    adj = SparseTensor(data.adj_t)
    assert torch.allclose(model(data.x, adj), model(data.x, data.adj_t))
    assert torch.allclose(model(x=data.x, adj_t=adj),
                          model(data.x, data.adj_t))


# Parameter groups follow reg_modules and nonreg_modules ###################


class TwoLayers(ScalableGNN):
    def __init__(self, reg, nonreg):
        super().__init__(10, 4, num_layers=2)
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)
        self.scale = torch.nn.Parameter(torch.ones(1))
        self._reg, self._nonreg = reg, nonreg

    @property
    def reg_modules(self):
        return [getattr(self, n) for n in self._reg]

    @property
    def nonreg_modules(self):
        return [getattr(self, n) for n in self._nonreg]


def test_param_groups_follow_reg_modules():
    model = TwoLayers(['a'], ['b'])
    reg, nonreg = model.param_groups(0.1, 0.01)
    # The model's own parameter joins the weight-decay group.
    assert {id(p) for p in reg['params']} == {
        id(model.a.weight), id(model.a.bias), id(model.scale)}
    assert reg['weight_decay'] == 0.1
    assert {id(p) for p in nonreg['params']} == {
        id(model.b.weight), id(model.b.bias)}
    assert nonreg['weight_decay'] == 0.01
    # A module in neither list would be left out of training (earlier, it
    # was given weight decay although 'reg_modules' left it out).
    with pytest.raises(ValueError, match=r"\['b.weight', 'b.bias'\] .* "
                       r"neither 'reg_modules' nor 'nonreg_modules'"):
        TwoLayers(['a'], []).param_groups(0.1)
    # 'nonreg_modules' carves modules out of 'reg_modules'.
    reg, nonreg = TwoLayers(['a', 'b'], ['b']).param_groups(0.1)
    assert len(reg['params']) == 3 and len(nonreg['params']) == 2
    # The defaults: every submodule gets weight decay.
    model = ScalableGNN(10, 4, num_layers=2)
    model.lin = torch.nn.Linear(3, 3)
    (group, ) = model.param_groups(0.5)
    assert len(group['params']) == 2 and group['weight_decay'] == 0.5


def test_half_precision_features_are_computed_in_the_model_dtype():
    # Features kept in float16 (e.g. in a graph store) are cast to the
    # parameters' dtype, in GAS, full-batch and layer-wise inference.
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 8, 3]).eval()
    half = data.clone()
    half.x = data.x.half()
    exact = data.clone()
    exact.x = half.x.float()
    batch = next(iter(SubgraphLoader(half, ptr, batch_size=2)))
    ref = next(iter(SubgraphLoader(exact, ptr, batch_size=2)))
    with torch.no_grad():
        assert torch.equal(model(batch.data.x, batch.data.adj_t, batch),
                           model(ref.data.x, ref.data.adj_t, ref))
        assert torch.equal(model(half.x, half.adj_t),
                           model(exact.x, exact.adj_t))
    outs = [model.mini_inference(EvalSubgraphLoader(d, ptr), progress=False)
            for d in (half, exact)]
    assert torch.equal(outs[0], outs[1]) and outs[0].dtype == torch.float32


def test_mini_inference_writes_into_a_given_tensor(tmp_path):
    # E.g. a memory-mapped array, for outputs larger than memory.
    from torch_autoscale.store import GraphStoreWriter
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 8, 3])
    loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    expected = model.mini_inference(loader, progress=False)
    writer = GraphStoreWriter(tmp_path / 'pred', num_nodes=data.num_nodes)
    mapped = writer.create('pred', (data.num_nodes, 3), torch.float16)
    out = model.mini_inference(loader, progress=False, out=mapped)
    assert out is mapped
    assert torch.equal(mapped, expected.half())
    writer.abort()
    with pytest.raises(ValueError, match="'out' must be a CPU tensor"):
        model.mini_inference(loader, progress=False, out=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="'out' has 2 columns"):
        model.mini_inference(loader, progress=False,
                             out=torch.zeros(data.num_nodes, 2))


@pytest.mark.parametrize('batch_size', [1, 3])
def test_mini_inference_with_batches_built_on_demand(batch_size):
    # For graphs larger than memory: the subgraphs are built when needed,
    # at every layer, two at most kept; the output is the same.
    data, ptr = clustered()
    model = SAGE(data.num_nodes, [data.num_features, 8, 8, 3])
    kept = EvalSubgraphLoader(data, ptr, batch_size=batch_size)
    lazy = EvalSubgraphLoader(data, ptr, batch_size=batch_size,
                              precompute=False)
    assert lazy.batches is None
    sequence = lazy.batch_sequence()
    assert len(sequence) == len(kept.batches)
    for a, b in zip(sequence, kept.batches):
        assert torch.equal(a.n_id, b.n_id)
    assert len(sequence._kept) == 2
    assert lazy.required_buffer_size() == kept.required_buffer_size()
    bare = lazy.batch_sequence(node_attrs=[])[0]
    assert 'x' not in bare.data and 'y' in kept.batches[0].data
    assert torch.equal(bare.n_id, kept.batches[0].n_id)
    expected = model.mini_inference(kept, progress=False)
    # Layers after the first gather no node features (on a graph larger
    # than memory, a halo's features are most of the feature file).
    collater, asked = lazy.collater, []
    lazy.collater = lambda group, node_attrs=None: (
        asked.append(node_attrs), collater(group, node_attrs))[1]
    assert torch.equal(model.mini_inference(lazy, progress=False), expected)
    per_layer = len(sequence)
    assert asked == [['x']] * per_layer + [[]] * (2 * per_layer)
