import copy
import gc
import os
import pickle
import tempfile

import pytest
import torch

import torch_autoscale.history.files as files_module
import torch_autoscale.history.history as history_module
from torch_autoscale.history import AsyncIOPool, History, SegmentHistory
from torch_autoscale.testing import devices, onlyCUDA

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def tiers():
    out = [('host', None), ('disk', None)]
    out += [('device', device) for device in devices()]
    return out


def make(storage, device, dtype, tmp_path, num_nodes=20, channels=6):
    directory = str(tmp_path) if storage == 'disk' else None
    return History(num_nodes, channels, device=device, dtype=dtype,
                   storage=storage, directory=directory)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('storage,device', tiers())
def test_tiers_agree(storage, device, dtype, tmp_path):
    ref = History(20, 6)
    history = make(storage, device, dtype, tmp_path)
    assert history.storage == storage
    assert history.dtype == dtype
    assert history.emb.size() == (20, 6)
    assert history.nbytes == 20 * 6 * dtype.itemsize
    assert torch.equal(history.pull(), torch.zeros(20, 6))

    def check():
        expected = ref.pull().to(dtype).float()
        assert torch.equal(history.pull(), expected)
        n_id = torch.tensor([19, 0, 7, 7, 3])
        assert torch.equal(history.pull(n_id), expected[n_id])

    gen = torch.Generator().manual_seed(0)
    for h in (ref, history):  # Pushes by node index.
        h.push(torch.randn(4, 6, generator=gen.manual_seed(1)),
               torch.tensor([3, 11, 0, 19]))
    check()
    for h in (ref, history):  # Pushes by contiguous runs.
        h.push(torch.randn(7, 6, generator=gen.manual_seed(2)),
               offset=torch.tensor([2, 12]), count=torch.tensor([4, 3]))
    check()
    for h in (ref, history):  # Pushes of the whole table.
        h.push(torch.randn(20, 6, generator=gen.manual_seed(3)))
    check()
    history.reset_parameters()
    assert torch.equal(history.pull(), torch.zeros(20, 6))


def test_tier_inference_and_repr(tmp_path):
    assert History(4, 2).storage == 'host'
    assert History(4, 2, device='cpu').storage == 'host'
    assert History(4, 2, device='meta').storage == 'device'
    assert History(4, 2, device='meta').emb.device.type == 'meta'
    device = History(4, 2, device='cpu', storage='device')
    assert device.storage == 'device' and not device.emb.is_pinned()
    assert "storage='device', device=cpu" in repr(device)
    assert "storage='host'" in repr(History(4, 2))

    disk = History(4, 2, storage='disk', directory=str(tmp_path))
    assert disk.emb.device.type == 'cpu' and not disk.emb.is_pinned()
    assert disk.path is None  # The file never had a name (O_TMPFILE).
    assert os.listdir(tmp_path) == []
    assert disk.nbytes == 4 * 2 * 4
    assert f"storage='disk', directory={str(tmp_path)!r}" in repr(disk)
    assert History(4, 2).path is None
    kept = History(4, 2, storage='disk', directory=str(tmp_path),
                   keep_file=True)
    assert kept.directory == str(tmp_path)
    assert os.path.basename(kept.path).startswith('history_')
    assert kept.path.endswith('.bin')
    assert f"storage='disk', path={kept.path!r}" in repr(kept)
    kept.close()

    # A history follows the model's device but its table stays put.
    torch.nn.ModuleList([disk]).to('meta')
    assert disk.device.type == 'meta'
    assert disk.emb.device.type == 'cpu'


def test_disk_default_directory():
    history = History(3, 2, storage='disk')
    assert history.directory == tempfile.gettempdir()
    assert history.path is None
    history.close()


def test_disk_file_name_is_removed_once_mapped(tmp_path):
    history = History(10, 4, storage='disk', directory=str(tmp_path))
    assert os.listdir(tmp_path) == []
    x = torch.randn(10, 4)
    history.push(x)
    assert torch.equal(history.pull(), x)  # The mapping keeps the rows.
    del history
    gc.collect()

    # Two histories in one folder get files of their own.
    a = History(10, 4, storage='disk', directory=str(tmp_path))
    b = History(10, 4, storage='disk', directory=str(tmp_path))
    assert os.listdir(tmp_path) == []
    a.push(torch.ones(10, 4))
    assert torch.equal(b.pull(), torch.zeros(10, 4))

    # The history is unusable after close().
    a.close()
    a.close()  # A no-op.
    with pytest.raises(RuntimeError, match='was closed'):
        a.pull()
    with pytest.raises(RuntimeError, match='was closed'):
        a.push(torch.ones(10, 4))


def test_disk_keep_file(tmp_path):
    history = History(10, 4, storage='disk', directory=str(tmp_path),
                      keep_file=True)
    x = torch.randn(10, 4)
    history.push(x)
    path = history.path
    assert os.path.getsize(path) == 10 * 4 * 4
    del history
    gc.collect()
    assert os.path.exists(path)
    # The file holds the rows, row after row.
    table = torch.from_file(path, size=40, dtype=torch.float32).view(10, 4)
    assert torch.equal(table, x)

    history = History(10, 4, storage='disk', directory=str(tmp_path),
                      keep_file=True)
    path = history.path
    history.close()
    assert os.path.exists(path)


def test_disk_copy_and_pickle(tmp_path):
    history = History(8, 3, dtype=torch.float16, storage='disk',
                      directory=str(tmp_path))
    x = torch.randn(8, 3)
    history.push(x)

    clone = copy.deepcopy(history)
    assert clone.storage == 'disk' and clone.emb.data_ptr() != \
        history.emb.data_ptr()
    assert clone.directory == str(tmp_path) and clone.path is None
    assert torch.equal(clone.pull(), history.pull())
    clone.push(torch.zeros(8, 3))
    assert torch.equal(history.pull(), x.half().float())
    del clone
    gc.collect()
    assert os.listdir(tmp_path) == []

    # Pickling stores the contents; the copy lives in host memory.
    restored = pickle.loads(pickle.dumps(history))
    assert restored.storage == 'host' and restored.path is None
    assert restored.dtype == torch.float16
    assert torch.equal(restored.pull(), history.pull())
    assert history.storage == 'disk'
    assert torch.equal(history.pull(), x.half().float())

    host = copy.deepcopy(History(8, 3))
    assert host.storage == 'host' and host.path is None


def test_segment_history_on_disk(tmp_path):
    history = SegmentHistory([3, 1, 4], 5, dtype=torch.bfloat16,
                             storage='disk', directory=str(tmp_path))
    assert history.storage == 'disk'
    assert history.path is None and os.listdir(tmp_path) == []
    assert "storage='disk'" in repr(history)
    graph, segment = torch.tensor([2, 0]), torch.tensor([3, 1])
    x = torch.randn(2, 5)
    history.push(x, graph, segment)
    assert torch.equal(history.pull(graph, segment), x.bfloat16().float())
    assert history.written.tolist() == [0, 1, 0, 0, 0, 0, 0, 1]
    history.reset_parameters()
    assert not history.written.any()
    assert torch.equal(history.pull(), torch.zeros(8, 5))
    del history
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_storage_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'storage' must be one of 'device'"):
        History(4, 2, storage='ssd')
    with pytest.raises(ValueError, match="storage='device'.*device='cuda'"):
        History(4, 2, storage='device')
    for storage in ('host', 'disk'):
        with pytest.raises(ValueError, match=f"storage='{storage}' keeps"):
            History(4, 2, device='meta', storage=storage)
    with pytest.raises(ValueError, match="'directory' is used by"):
        History(4, 2, directory=str(tmp_path))
    with pytest.raises(ValueError, match="'keep_file' is used by"):
        History(4, 2, storage='host', keep_file=True)
    with pytest.raises(ValueError, match='does not exist'):
        History(4, 2, storage='disk', directory=str(tmp_path / 'missing'))
    file = tmp_path / 'file'
    file.write_text('')
    with pytest.raises(ValueError, match='not a folder'):
        History(4, 2, storage='disk', directory=str(file))
    with monkeypatch.context() as m:
        m.setattr(files_module.os, 'access', lambda *args: False)
        with pytest.raises(ValueError, match="'directory' .* not writable"):
            History(4, 2, storage='disk', directory=str(tmp_path))
    if os.path.isdir('/proc'):  # Passes os.access as root, fails to create.
        with pytest.raises(ValueError, match="'directory' .* not writable"):
            History(4, 2, storage='disk', directory='/proc')
    assert os.listdir(tmp_path) == ['file']  # Nothing was left behind.


@onlyCUDA
def test_pool_with_unpinned_tables(tmp_path):
    history = History(1000, 16, dtype=torch.float16, storage='disk',
                      directory=str(tmp_path))
    assert not history.emb.is_pinned()
    pool = AsyncIOPool(1, 300, 16).to('cuda')  # Holds one staged push.
    count = torch.tensor([50, 40])
    offsets = [torch.tensor([10, 500]), torch.tensor([100, 700]),
               torch.tensor([300, 900])]
    xs = [torch.randn(90, 16, device='cuda') for _ in offsets]
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        for x, offset in zip(xs, offsets):
            pool.async_push(x, offset, count, history.emb)
            assert len(pool._push_staged) <= 1
        pool.synchronize_push()
    assert len(pool._push_staged) == 0
    for x, (a, b) in zip(xs, [o.tolist() for o in offsets]):
        assert torch.equal(history.emb[a:a + 50], x[:50].cpu().half())
        assert torch.equal(history.emb[b:b + 40], x[50:].cpu().half())

    index = torch.randperm(1000)[:200]
    with torch.cuda.stream(stream):
        pool.async_pull(history.emb, None, None, index)
        out = pool.synchronize_pull().clone()
    stream.synchronize()
    assert torch.equal(out.cpu(), history.emb[index])


@pytest.mark.skipif(os.name != 'posix', reason='removes open files (POSIX)')
def test_killed_process_leaves_no_disk_table(tmp_path):
    import subprocess
    import sys
    code = ('import os, signal, torch\n'
            'from torch_autoscale.history import History\n'
            f'h = History(1000, 8, storage="disk", '
            f'directory={str(tmp_path)!r})\n'
            'h.push(torch.ones(1000, 8))\n'
            'os.kill(os.getpid(), signal.SIGKILL)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert os.listdir(tmp_path) == []


def test_disk_file_removed_when_done_where_open_files_stay(tmp_path,
                                                          monkeypatch):
    # Where an open file cannot be removed (Windows), close() or garbage
    # collection removes it. (Such systems have no O_TMPFILE either.)
    monkeypatch.setattr(history_module, 'release_name', lambda path: False)
    monkeypatch.setattr(files_module, 'open_unnamed', lambda d: None)
    a = History(10, 4, storage='disk', directory=str(tmp_path))
    b = History(10, 4, storage='disk', directory=str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(h.path) for h in (a, b))
    a.close()
    assert os.listdir(tmp_path) == [os.path.basename(b.path)]
    del b
    gc.collect()
    assert os.listdir(tmp_path) == []
