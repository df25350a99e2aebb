import pytest
import torch

from torch_autoscale.history import History, HistoryPlacement, HistoryStore
from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.testing import clustered_graph


def test_build_and_verbs():
    data, ptr = clustered_graph(120, 4, num_classes=3)
    store = HistoryStore.build(data.num_nodes, [8, 4], dtype=torch.float16)
    assert len(store) == 2 and all(isinstance(t, History) for t in store)
    assert store[0].dtype == torch.float16 and store.pool is None
    assert store.nbytes == 120 * (8 + 4) * 2
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=2)))
    x = torch.randn(batch.n_id.numel(), 8)
    store.begin(batch)  # No pool: nothing to start.
    out = store.push_and_pull(0, x, batch)
    store.end()
    bs = batch.batch_size
    assert torch.equal(out[:bs], x[:bs])
    assert torch.equal(store[0].pull(batch.n_id[:bs]), x[:bs].half().float())
    # The halo comes from the table (zeros until pushed).
    assert torch.equal(out[bs:], torch.zeros_like(out[bs:]))
    with pytest.raises(ValueError, match="not a table of this model's"):
        store.push_and_pull(History(120, 8), x, batch)
    with pytest.raises(ValueError, match="'x' has 2 rows"):
        store.push_and_pull(store[0], x[:2], batch)


def test_inference_verbs():
    data, ptr = clustered_graph(120, 4, num_classes=3)
    store = HistoryStore(data.num_nodes, [5])
    batches = EvalSubgraphLoader(data, ptr, batch_size=2).batches
    for batch in batches:
        h = torch.full((batch.batch_size, 5), float(batch.offset[0]))
        store.inference_push(0, h, batch)
    store.inference_end(0)
    for batch, x in zip(batches, store.inference_inputs(0, batches)):
        assert torch.equal(x, store[0].pull(batch.n_id))


def test_bad_arguments():
    with pytest.raises(ValueError, match="pass either 'placement' or "
                       "'history_storage'"):
        HistoryStore.build(10, [4], placement=HistoryPlacement.resolve(1),
                           storage='host', prefix='history_')
    with pytest.raises(ValueError, match="pass either 'history_factory'"):
        HistoryStore.build(10, [4], storage='host', prefix='history_',
                           factory=lambda *args: History(10, 4))
    with pytest.raises(ValueError, match="'placement' must be a "
                       "HistoryPlacement"):
        HistoryStore(10, [4], placement='host')
    with pytest.raises(ValueError, match="given together"):
        HistoryStore(10, [4], pool_size=2)
    with pytest.raises(TypeError, match='must return a History'):
        HistoryStore(10, [4], factory=lambda *args: None)
