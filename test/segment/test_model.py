import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from torch_autoscale.segment import (
    VARIANTS,
    GSTModel,
    SegmentedDataset,
    SegmentEncoder,
    SegmentLoader,
)
from torch_autoscale.testing import random_graphs


@pytest.fixture
def dataset():
    return SegmentedDataset(random_graphs(6, 5, 60, edges_per_node=3),
                            max_segment_size=12,
                            method='contiguous', cache=False, progress=False)


def make(dataset, variant, **kwargs):
    # No batch normalization: the exactness tests below compare training-mode
    # forward passes over different groupings of segments, and batch
    # statistics depend on the grouping.
    torch.manual_seed(0)
    return GSTModel(SegmentEncoder(4, 8, conv='gcn', batch_norm=False),
                    torch.nn.Linear(8, 3),
                    num_segments=dataset.num_segments, variant=variant,
                    **kwargs)


def all_segments(dataset, **kwargs):
    return SegmentLoader(dataset, batch_size=4, num_sampled=None, **kwargs)


def reference_embedding(model, dataset, aggr='mean'):
    # Every segment through the encoder one by one, then aggregated.
    out = []
    loader = all_segments(dataset)
    for i in range(len(dataset)):
        data = dataset[i]
        hs = []
        for j in range(data.seg_ptr.numel() - 1):
            seg = loader.collater.segment(i, data, j)
            hs.append(model.encoder(seg))
        h = torch.cat(hs, dim=0)
        out.append(h.mean(0) if aggr == 'mean' else h.sum(0))
    return torch.stack(out)


def test_variants_and_errors(dataset):
    assert VARIANTS == ('full', 'gst', 'gst-one', 'gst-e', 'gst-ef',
                        'gst-ed', 'gst-efd')
    with pytest.raises(ValueError, match="unknown 'variant'"):
        make(dataset, 'gst-x')
    with pytest.raises(ValueError, match="'keep_prob'"):
        make(dataset, 'gst-efd', keep_prob=1.5)
    with pytest.raises(ValueError, match="'keep_prob'"):
        make(dataset, 'gst-efd', keep_prob=-0.1)
    with pytest.raises(ValueError, match="'aggr'"):
        make(dataset, 'gst', aggr='max')
    with pytest.raises(ValueError, match="'num_segments'"):
        GSTModel(SegmentEncoder(4, 8), torch.nn.Linear(8, 3),
                 variant='gst-e')
    with pytest.raises(ValueError, match="keeps no segment table"):
        make(dataset, 'gst').refresh_table(all_segments(dataset))
    assert make(dataset, 'gst').loader_options == dict(
        num_sampled=1, others=True, whole=False)
    assert make(dataset, 'full').loader_options['whole']
    model = make(dataset, 'full')
    batch = next(iter(SegmentLoader(dataset, batch_size=2)))
    with pytest.raises(ValueError, match="whole=True"):
        model(batch)
    with pytest.raises(ValueError, match="others=True"):
        make(dataset, 'gst')(batch)


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('aggr', ['mean', 'sum'])
def test_prediction_uses_fresh_embeddings_of_every_segment(
        dataset, variant, aggr):
    model = make(dataset, variant, aggr=aggr)
    loader = all_segments(dataset, whole=variant == 'full')
    graph_id, out = model.predict(loader, progress=False)
    assert torch.equal(graph_id, torch.arange(len(dataset)))
    if variant == 'full':
        ref = torch.stack([
            model.encoder(Data(x=d.x, edge_index=d.edge_index)).view(-1)
            for d in dataset
        ])
    else:
        ref = reference_embedding(model, dataset, aggr)
    assert torch.allclose(out, model.head(ref), atol=1e-5)


def test_gst_with_fresh_table_equals_gst_e(dataset):
    gst = make(dataset, 'gst')
    gst_e = make(dataset, 'gst-e')
    gst_e.load_state_dict(gst.state_dict(), strict=False)
    gst_e.refresh_table(all_segments(dataset), progress=False)
    torch.manual_seed(1)
    batch = next(iter(SegmentLoader(dataset, batch_size=6, others=True)))
    assert batch.others.graph.numel() > 0  # Stale segments take part.
    gst.train()
    gst_e.train()
    assert torch.allclose(gst.embed(batch), gst_e.embed(batch), atol=1e-5)


def test_gst_one_ignores_other_segments(dataset):
    model = make(dataset, 'gst-one')
    batch = next(iter(SegmentLoader(dataset, batch_size=6)))
    h = model.encoder(batch.sampled.data)  # One sampled segment per graph.
    assert torch.allclose(model.embed(batch), h, atol=1e-6)


def test_table_is_updated_with_the_sampled_segments(dataset):
    model = make(dataset, 'gst-e')
    assert not bool(model.table.written.any())
    batch = next(iter(SegmentLoader(dataset, batch_size=6)))
    model.train()
    model(batch)
    graph = batch.graph_id[batch.sampled.graph]
    rows = model.table.pull(graph, batch.sampled.segment)
    assert torch.allclose(rows, model.encoder(batch.sampled.data), atol=1e-6)
    assert int(model.table.written.sum()) == batch.sampled.graph.numel()


@pytest.mark.parametrize('aggr', ['mean', 'sum'])
def test_sed_is_unbiased_with_a_fresh_table(dataset, aggr):
    model = make(dataset, 'gst-ed', aggr=aggr, keep_prob=0.5)
    model.refresh_table(all_segments(dataset), progress=False)
    exact = reference_embedding(model, dataset, aggr).detach()
    loader = SegmentLoader(dataset, batch_size=len(dataset))
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        samples = torch.stack([model.embed(next(iter(loader)))
                               for _ in range(3000)])
    mean, std = samples.mean(0), samples.std(0)
    # Every coordinate within 5 standard errors of the exact aggregate:
    assert bool(((mean - exact).abs() <= 5 * std / 3000**0.5 + 1e-6).all())
    assert bool((std.max() > 0))  # SED does add noise.
    # Without SED (evaluation), the aggregate is exact:
    model.eval()
    assert torch.allclose(model.embed(next(iter(loader))), exact, atol=1e-5)


def test_sed_does_not_read_dropped_segments(dataset, monkeypatch):
    model = make(dataset, 'gst-ed', keep_prob=0.0)
    model.train()
    pulled = []
    original = model.table.pull

    def pull(graph=None, segment=None):
        pulled.append(0 if graph is None else graph.numel())
        return original(graph, segment)

    monkeypatch.setattr(model.table, 'pull', pull)
    model(next(iter(SegmentLoader(dataset, batch_size=6))))
    assert sum(pulled) == 0


def test_finetune_trains_the_head_only(dataset):
    model = make(dataset, 'gst-efd')
    encoder = copy.deepcopy(model.encoder.state_dict())
    head = copy.deepcopy(model.head.state_dict())
    loader = all_segments(dataset)
    losses = model.finetune(loader, epochs=30, lr=0.05, batch_size=3,
                            progress=False)
    assert len(losses) == 30 and losses[-1] < losses[0]
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder[key])
    assert any(not torch.equal(v, head[k])
               for k, v in model.head.state_dict().items())
    # The table was refreshed with the final encoder:
    exact = reference_embedding(model, dataset)
    assert torch.allclose(model._table_embedding(torch.arange(6)), exact,
                          atol=1e-5)
    with pytest.raises(ValueError, match="'epochs'"):
        model.finetune(loader, epochs=-1)
    with pytest.raises(ValueError, match="'scheduler'"):
        model.finetune(loader, epochs=1, scheduler='step')


def test_finetune_cosine_schedule_anneals_to_zero(dataset, monkeypatch):
    model = make(dataset, 'gst-efd')
    lrs = []
    step = torch.optim.Adam.step

    def record(self, *args, **kwargs):
        lrs.append(self.param_groups[0]['lr'])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, 'step', record)
    model.finetune(all_segments(dataset), epochs=4, lr=0.1, batch_size=6,
                   progress=False)
    assert lrs[0] == pytest.approx(0.1) and lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 3 / 4)) / 2)
    lrs.clear()
    model.finetune(all_segments(dataset), epochs=3, lr=0.1, batch_size=6,
                   scheduler='constant', progress=False)
    assert lrs == [pytest.approx(0.1)] * 3


@pytest.mark.parametrize('batch_norm', [False, True])
@pytest.mark.parametrize('variant', VARIANTS)
def test_every_variant_trains(dataset, variant, batch_norm):
    model = make(dataset, variant)
    if batch_norm:  # The default encoder.
        torch.manual_seed(0)
        model.encoder = SegmentEncoder(4, 8, conv='gcn')
    if model.table is not None:
        model.refresh_table(all_segments(dataset), progress=False)
    loader = SegmentLoader(dataset, batch_size=3, shuffle=True,
                           **model.loader_options)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = last = None
    for epoch in range(40):
        total = 0.0
        for batch in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(batch), batch.y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        first = total if first is None else first
        last = total
    assert last < first


def test_step_memory_is_set_by_the_segment_size():
    from torch_autoscale.utils import StepMemory

    def graph(n):
        return Data(x=torch.randn(n, 4), edge_index=to_undirected(
            torch.randint(n, (2, 3 * n)), num_nodes=n), y=torch.tensor([0]),
            num_nodes=n)

    dataset = SegmentedDataset([graph(50), graph(2000)], max_segment_size=25,
                               method='contiguous', cache=False,
                               progress=False)
    memory = {}
    for variant in ('full', 'gst-e'):
        model = make(dataset, variant)
        for i in range(2):
            loader = SegmentLoader(dataset, indices=[i],
                                   **model.loader_options)
            batch = next(iter(loader))
            with StepMemory() as mem:
                F.cross_entropy(model(batch), batch.y).backward()
            memory[variant, i] = mem.peak_bytes
    assert memory['full', 1] > 20 * memory['full', 0]
    assert memory['gst-e', 1] < 1.5 * memory['gst-e', 0]
