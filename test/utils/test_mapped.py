import torch

from torch_autoscale.history import History
from torch_autoscale.utils.mapped import mapping_kind, register_mapping


def mapped(tmp_path, rows=1000, cols=5):
    path = tmp_path / 'x.bin'
    torch.randn(rows, cols).numpy().tofile(path)
    x = torch.from_file(str(path), size=rows * cols).view(rows, cols)
    register_mapping(x, 'test')
    return x


def test_mapping_kind_follows_views_not_copies(tmp_path):
    x = mapped(tmp_path)
    assert mapping_kind(x) == 'test' and mapping_kind(x[3:7, 1:]) == 'test'
    assert mapping_kind(x.clone()) is None
    assert mapping_kind(torch.zeros(3)) is None and mapping_kind(None) is None
    history = History(10, 4, storage='disk', directory=str(tmp_path))
    assert mapping_kind(history.emb) == 'history'
    assert mapping_kind(History(10, 4).emb) is None


def test_disk_history_pulls_rows_in_any_order(tmp_path):
    disk = History(100, 3, storage='disk', directory=str(tmp_path))
    host = History(100, 3)
    x = torch.randn(100, 3)
    disk.push(x)
    host.push(x)
    n_id = torch.randperm(100)[:40]
    assert torch.equal(disk.pull(n_id), x[n_id])
    assert torch.equal(disk.pull(n_id), host.pull(n_id))
