import pytest
import torch

import torch_autoscale.checkpoint
from torch_autoscale import load_checkpoint, save_checkpoint
from torch_autoscale.errors import CheckpointError
from torch_autoscale.history import History, SegmentHistory
from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import clustered_graph, train_gas_epoch


@pytest.fixture(scope='module')
def graph():
    return clustered_graph(300, 6, 'gcn_norm', num_classes=4)


def build(data, **kwargs):
    model = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=3,
                dropout=0.5, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return model, optimizer


def train_epoch(model, optimizer, data, ptr):
    return train_gas_epoch(model, optimizer,
                           SubgraphLoader(data, ptr, batch_size=2,
                                          shuffle=True))


def record(model, optimizer, data, ptr):
    torch.manual_seed(777)  # The same shuffling and dropout in both runs.
    losses = train_epoch(model, optimizer, data, ptr)
    tables = [h.pull() for h in model.histories]
    out = model.mini_inference(EvalSubgraphLoader(data, ptr),
                               progress=False)
    return losses, tables, out


@pytest.mark.parametrize('saved,resumed', [
    ('host', 'host'),
    ('disk', 'disk'),
    ('disk', 'host'),  # Histories restore into any tier.
])
def test_resume_equals_continued_run(graph, tmp_path, saved, resumed):
    data, ptr = graph
    path = tmp_path / 'last.pt'

    torch.manual_seed(0)
    model, optimizer = build(data, history_storage=saved,
                             history_dir=str(tmp_path))
    for _ in range(2):
        train_epoch(model, optimizer, data, ptr)
    save_checkpoint(path, model, optimizer, epoch=1, best_val=0.5,
                    rng=torch.get_rng_state())
    assert sorted(p.name for p in tmp_path.iterdir()
                  if p.suffix != '.bin') == ['last.pt']
    continued = record(model, optimizer, data, ptr)

    torch.manual_seed(1)  # Other parameters, other history contents.
    fresh, fresh_optimizer = build(data, history_storage=resumed,
                                   history_dir=str(tmp_path))
    train_epoch(fresh, fresh_optimizer, data, ptr)
    extra = load_checkpoint(path, fresh, fresh_optimizer)
    assert extra['epoch'] == 1 and extra['best_val'] == 0.5
    assert isinstance(extra['rng'], torch.Tensor)
    assert [h.storage for h in fresh.histories] == [resumed] * 2
    resumed_run = record(fresh, fresh_optimizer, data, ptr)

    assert continued[0] == resumed_run[0]
    for a, b in zip(continued[1], resumed_run[1]):
        assert torch.equal(a, b)
    assert torch.equal(continued[2], resumed_run[2])


def test_histories_are_restored_in_chunks(graph, tmp_path, monkeypatch):
    data, _ = graph
    model, _ = build(data, history_dtype=torch.float16,
                     history_storage='disk', history_dir=str(tmp_path))
    tables = [torch.randn(h.num_nodes, h.channels) for h in model.histories]
    for history, table in zip(model.histories, tables):
        history.push(table)
    save_checkpoint(tmp_path / 'ckpt.pt', model)
    # State dicts (e.g. copies of the best model) never hold the tables.
    assert not any('emb' in key for key in model.state_dict())

    monkeypatch.setattr(torch_autoscale.checkpoint, 'CHUNK_ROWS', 7)
    # A float32 history is restored from a float16 one by casting.
    other, _ = build(data)
    assert load_checkpoint(tmp_path / 'ckpt.pt', other) == {}
    for history, table in zip(other.histories, tables):
        assert torch.equal(history.pull(), table.half().float())
    for a, b in zip(model.state_dict().values(),
                    other.state_dict().values()):
        assert torch.equal(a, b)


def test_segment_history_written_mask(tmp_path):
    model = torch.nn.Module()
    model.table = SegmentHistory([3, 1, 4], 5)
    x = torch.randn(2, 5)
    model.table.push(x, torch.tensor([2, 0]), torch.tensor([3, 1]))
    save_checkpoint(tmp_path / 'gst.pt', model)

    other = torch.nn.Module()
    other.table = SegmentHistory([3, 1, 4], 5, storage='disk',
                                 directory=str(tmp_path))
    load_checkpoint(tmp_path / 'gst.pt', other)
    assert torch.equal(other.table.written, model.table.written)
    assert torch.equal(other.table.pull(), model.table.pull())


def test_checkpoint_errors(graph, tmp_path):
    data, _ = graph
    path = tmp_path / 'ckpt.pt'
    model, optimizer = build(data)
    save_checkpoint(path, model)

    with pytest.raises(CheckpointError, match='holds no optimizer state'):
        load_checkpoint(path, model, optimizer)
    wider = GCN(data.num_nodes, data.num_features, 32, 4, num_layers=3)
    wider.histories[0].push(torch.ones(data.num_nodes, 32))
    before = [p.detach().clone() for p in wider.parameters()]
    with pytest.raises(CheckpointError, match=r"history 'histories.0' has "
                       r"shape \(300, 16\) in the checkpoint but "
                       r"\(300, 32\)"):
        load_checkpoint(path, wider)
    # Errors are raised before anything is modified (CheckpointError is a
    # ValueError).
    assert all(torch.equal(a, b) for a, b in zip(before, wider.parameters()))
    assert bool((wider.histories[0].pull() == 1).all())
    deeper = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=4)
    with pytest.raises(CheckpointError, match=r"the model's histories "
                       r"\['histories.2'\] are not in the checkpoint"):
        load_checkpoint(path, deeper)
    shallow = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=2)
    with pytest.raises(CheckpointError, match=r"the checkpoint holds "
                       r"histories \['histories.1'\] that the model lacks"):
        load_checkpoint(path, shallow)
    torch.save({'weights': torch.ones(1)}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match="not a checkpoint written by"):
        load_checkpoint(tmp_path / 'other.pt', model)

    closed = History(4, 2)
    closed.close()
    holder = torch.nn.Module()
    holder.history = closed
    with pytest.raises(RuntimeError, match='was closed'):
        save_checkpoint(tmp_path / 'closed.pt', holder)
    assert not (tmp_path / 'closed.pt').exists()


def test_overwrite_while_restored(graph, tmp_path):
    # Saving again to the file a model was restored from is safe: nothing
    # restored still maps the old file.
    data, ptr = graph
    path = tmp_path / 'last.pt'
    model, optimizer = build(data)
    train_epoch(model, optimizer, data, ptr)
    save_checkpoint(path, model, optimizer, epoch=0)
    load_checkpoint(path, model, optimizer)
    for epoch in range(1, 3):
        train_epoch(model, optimizer, data, ptr)
        save_checkpoint(path, model, optimizer, epoch=epoch)
        assert load_checkpoint(path, model, optimizer)['epoch'] == epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ['last.pt']
