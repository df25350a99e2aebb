r"""Classes 3, 4, 6 and 8 of the fault suite: histories (runs, value range),
full disks, leftover files and silent garbage (non-finite values, partial
layer-wise inference)."""
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from torch_autoscale.errors import (
    HistoryOverflowError,
    NonFiniteError,
    set_finite_checks,
)
from torch_autoscale.history import History
from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t
from torch_autoscale.utils.synthetic import homophilous_sbm

# Histories ###################################################################


@pytest.mark.parametrize('offset,count', [
    ([0, 5], [3, -2]),
    ([-1], [3]),
    ([8], [3]),
    ([2**62], [1]),
    ([0, 2], [3, 2]),  # Overlapping runs.
])
def test_push_rejects_bad_runs(offset, count):
    history = History(10, 4)
    before = history.emb.clone()
    x = torch.randn(max(sum(c for c in count if c > 0), 0), 4)
    with pytest.raises(ValueError, match="'offset'/'count'"):
        history.push(x, offset=torch.tensor(offset),
                     count=torch.tensor(count))
    assert torch.equal(history.emb, before)  # Nothing was written.


PUSHES = {
    'ids': lambda x: dict(n_id=torch.tensor([6, 2, 9])),
    'runs': lambda x: dict(offset=torch.tensor([6, 1]),
                           count=torch.tensor([1, 2])),
    'table': lambda x: {},
}
NODES = {'ids': [2], 'runs': [1], 'table': [1]}


@pytest.mark.parametrize('how', list(PUSHES))
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16,
                                   torch.float32])
def test_push_overflow_and_non_finite_values(how, dtype):
    history = History(10, 4, dtype=dtype)
    rows = 10 if how == 'table' else 3
    x = torch.randn(rows, 4)
    x[1, 2] = 1e5  # Beyond float16's 65504.
    if dtype == torch.float16:
        with pytest.raises(HistoryOverflowError, match='65504') as info:
            history.push(x, **PUSHES[how](x))
        assert info.value.rows == NODES[how]
        assert not history.emb.isinf().any()
        assert history.emb.abs().sum() == 0  # Nothing was written.
    else:
        history.push(x, **PUSHES[how](x))  # Fits bfloat16 and float32.

    x[1, 2] = float('nan')
    x[0, 0] = float('-inf')
    with pytest.raises(NonFiniteError, match='NaN or infinite') as info:
        history.push(x, **PUSHES[how](x))
    expected = {'ids': [6, 2], 'runs': [6, 1], 'table': [0, 1]}[how]
    assert info.value.rows == expected
    assert torch.isfinite(history.emb).all()


def test_finite_checks_can_be_turned_off():
    history = History(4, 2, dtype=torch.float16)
    set_finite_checks(False)
    try:
        history.push(torch.full((4, 2), 1e5))  # Measurements only.
    finally:
        set_finite_checks(True)
    assert history.emb.isinf().all()
    with pytest.raises(HistoryOverflowError):
        history.push(torch.full((4, 2), 1e5))


# Full disks ##################################################################


def limit_file_size(nbytes):
    def preexec():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return preexec


def test_disk_history_beyond_file_size_limit_is_a_named_error(
        isolated, tmp_path):
    # 1 MiB file size limit, a 4 MiB table: the space cannot be reserved.
    result = isolated(
        f'''
        import os, torch
        from torch_autoscale.history import History
        try:
            History(1 << 18, 4, storage='disk', directory={str(tmp_path)!r})
        finally:
            print('left:', os.listdir({str(tmp_path)!r}))
        ''', preexec_fn=limit_file_size(1 << 20))
    assert result['error'] == 'StorageFullError', result
    assert 'OSError' in result['mro']
    assert 'cannot be reserved' in result['message']
    assert "left: []" in result['stdout']


@pytest.fixture
def small_fs(tmp_path):
    r"""A 4 MiB tmpfs, where mounting is allowed (as root)."""
    path = tmp_path / 'small'
    path.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs',
                           str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip('mounting a small tmpfs is not permitted here; the file '
                    'size limit test covers the same path')
    yield str(path)
    subprocess.run(['umount', '-l', str(path)], capture_output=True)


def test_full_disk_is_a_named_error_at_creation(isolated, small_fs):
    result = isolated(f'''
        import os, torch
        from torch_autoscale.history import History
        h = History(1 << 16, 12, storage='disk', directory={small_fs!r})
        h.push(torch.ones(1 << 16, 12))  # 3 MiB of 4: fits.
        try:
            History(1 << 16, 12, storage='disk', directory={small_fs!r})
        finally:
            print('left:', os.listdir({small_fs!r}))
        ''')
    assert result['error'] == 'StorageFullError', result
    assert "left: []" in result['stdout']


def test_checkpoint_into_disk_history_on_a_full_disk(isolated, small_fs,
                                                     tmp_path):
    # The table's space is reserved at creation: once it exists, filling
    # the disk cannot make a later write (here a checkpoint load) fault.
    result = isolated(f'''
        import os, torch
        from torch_autoscale import save_checkpoint, load_checkpoint
        from torch_autoscale.history import History
        src = torch.nn.Module()
        src.h = History(1 << 16, 8)
        src.h.push(torch.full((1 << 16, 8), 0.5))
        save_checkpoint({str(tmp_path / 'ckpt.pt')!r}, src)
        dst = torch.nn.Module()
        dst.h = History(1 << 16, 8, storage='disk', directory={small_fs!r})
        with open(os.path.join({small_fs!r}, 'filler'), 'wb') as f:
            try:
                while True:
                    f.write(b'x' * (1 << 16))
                    f.flush()
            except OSError:
                pass
        load_checkpoint({str(tmp_path / 'ckpt.pt')!r}, dst)
        assert bool((dst.h.pull() == 0.5).all())
        ''')
    assert result['error'] is None, result


# Leftover files ##############################################################


def test_killed_while_creating_a_disk_history_leaves_nothing(tmp_path):
    # The child stops inside the mapping of the new table's file (the
    # window between creating a file and removing its name) and is killed.
    code = textwrap.dedent(f'''
        import time, torch
        real = torch.from_file
        def slow(*args, **kwargs):
            out = real(*args, **kwargs)
            print('mapped', flush=True)
            time.sleep(60)
            return out
        torch.from_file = slow
        from torch_autoscale.history import History
        History(1000, 8, storage='disk', directory={str(tmp_path)!r})
        ''')
    child = subprocess.Popen([sys.executable, '-c', code],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == 'mapped'
        assert os.listdir(tmp_path) == []  # The file never had a name.
    finally:
        child.kill()
        child.wait(timeout=30)
    time.sleep(0.1)
    assert os.listdir(tmp_path) == []


# Silent garbage ##############################################################


def sbm(num_nodes=400):
    data = homophilous_sbm(num_nodes=num_nodes, num_classes=4,
                           num_features=16, seed=0)
    data.adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    cluster = metis(data.edge_index, data.num_nodes, 8)
    perm, ptr = sort_by_cluster(cluster, 8)
    del data.edge_index
    return permute(data, perm), ptr


def test_nan_feature_is_caught_at_preparation():
    data, ptr = sbm()
    data.x[37, 3] = float('nan')
    data.x[250, 0] = float('inf')
    for Loader in (SubgraphLoader, EvalSubgraphLoader):
        with pytest.raises(NonFiniteError, match=r"'data.x'.*\[37, 250\]") \
                as info:
            Loader(data, ptr, batch_size=2)
        assert info.value.rows == [37, 250]


def test_nan_reaching_a_history_is_caught_at_the_push():
    data, ptr = sbm()
    model = GCN(data.num_nodes, 16, 32, 4, num_layers=3)
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=False)
    with torch.no_grad():
        model.convs[0].lin.weight[0, 0] = float('nan')
    batch = next(iter(loader))
    with pytest.raises(NonFiniteError, match='NaN or infinite'):
        model(batch.data.x, batch.data.adj_t, batch)
    assert torch.isfinite(model.histories[0].emb).all()


def test_partial_loader_in_mini_inference_is_an_error():
    data, ptr = sbm()
    model = GCN(data.num_nodes, 16, 32, 4, num_layers=2)
    loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    partial = list(loader)[:-1]
    missing = int(ptr[-1] - ptr[-3])
    with pytest.raises(ValueError, match=f'{missing} node.*in no mini-batch'):
        model.mini_inference(partial, progress=False)
    with pytest.raises(ValueError, match='more than once|more than one'):
        model.mini_inference(list(loader) + partial[:1], progress=False)
    # Covering a chosen part on purpose (as each process of a distributed
    # inference does; the histories hold the others' rows): the other rows
    # of the output are zero.
    full = model.mini_inference(loader, progress=False)
    nodes = torch.arange(int(ptr[-3]))
    out = model.mini_inference(partial, progress=False, nodes=nodes)
    assert torch.allclose(out[nodes], full[nodes], atol=1e-5)
    assert (out[int(ptr[-3]):] == 0).all()


SHARED = r'''
import os, sys, json, torch
import torch.multiprocessing as mp
from torch_autoscale import distributed as tad

def run(rank, directory, rows, out):
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE='2')
    tad.init_process_group('gloo', timeout=60, rank=rank, world_size=2,
                           init_method='file://' + os.path.join(out, 'rdv'))
    result = {}
    try:
        h = tad.SharedHistory(rows, 8, directory=directory)
        h.push(torch.full((rows, 8), float(rank + 1)), torch.arange(rows)) \
            if rank == 0 else None
        h.sync()
        result['pulled'] = float(h.pull().mean())
        result['entries'] = os.listdir(directory)
        h.sync()
    except Exception as e:
        result['error'] = type(e).__name__
        result['message'] = str(e)
    with open(os.path.join(out, f'{rank}.json'), 'w') as f:
        json.dump(result, f)
    # Without it, gloo's threads may abort the process at exit.
    torch.distributed.destroy_process_group()

if __name__ == '__main__':
    mp.spawn(run, args=(sys.argv[1], int(sys.argv[2]), sys.argv[3]),
             nprocs=2)
'''


@pytest.mark.parametrize('fits', [True, False])
def test_shared_history_on_a_full_disk(small_fs, tmp_path, fits):
    # Rank 0 creates the shared table: a full disk is a named error on every
    # process (not a timeout, not a signal), and the table never has a name.
    script = tmp_path / 'shared.py'
    script.write_text(SHARED)
    rows = (1 << 16) if fits else (1 << 18)  # 2 MiB or 8 MiB of 4.
    proc = subprocess.run([sys.executable, str(script), small_fs, str(rows),
                           str(tmp_path)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = [__import__('json').loads((tmp_path / f'{r}.json').read_text())
               for r in range(2)]
    for result in results:
        if fits:
            assert result.get('error') is None, result
            assert result['pulled'] == 1.0
            assert result['entries'] == []  # No name, even while in use.
        else:
            assert result['error'] == 'StorageFullError', result
    assert os.listdir(small_fs) == []


def test_push_rejects_duplicate_or_inconsistent_ids():
    history = History(10, 3)
    with pytest.raises(ValueError, match='node 1 more than once'):
        history.push(torch.ones(2, 3), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match='describe different rows'):
        history.push(torch.ones(2, 3), torch.tensor([1, 2]),
                     torch.tensor([3]), torch.tensor([2]))
    history.push(torch.ones(2, 3), torch.tensor([3, 4]), torch.tensor([3]),
                 torch.tensor([2]))
    assert history.pull().sum() == 6
    with pytest.raises(ValueError, match="'num_nodes' must be"):
        History(True, 3)


def test_mini_inference_validates_nodes():
    data, ptr = sbm()
    model = GCN(data.num_nodes, 16, 32, 4, num_layers=2)
    loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    for nodes in (torch.arange(-10, 0), torch.tensor([0, 10_000]),
                  torch.tensor([0.5])):
        with pytest.raises(ValueError, match="'nodes'"):
            model.mini_inference(loader, progress=False, nodes=nodes)
