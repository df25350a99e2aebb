r"""Faults of :mod:`torch_autoscale.checkpoint`: planted links, killed and
failing saves, corrupted and truncated files, incompatible optimizers and
overflowing histories."""
import errno
import fractions
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import torch_autoscale.checkpoint as ckpt
from torch_autoscale import load_checkpoint, save_checkpoint
from torch_autoscale.errors import (
    CheckpointError,
    HistoryOverflowError,
    StorageFullError,
)
from torch_autoscale.history import History


def build(seed=0, dtype=None, storage='host', directory=None):
    torch.manual_seed(seed)
    model = torch.nn.Module()
    model.lin = torch.nn.Linear(6, 5)
    model.history = History(40, 5, dtype=dtype, storage=storage,
                            directory=directory)
    model.history.push(torch.randn(40, 5))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.lin(torch.randn(3, 6)).sum().backward()
    optimizer.step()
    return model, optimizer


def snapshot(model, optimizer=None):
    out = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out['table'] = model.history.pull()
    if optimizer is not None:
        for i, state in enumerate(optimizer.state.values()):
            for key, value in state.items():
                out[f'opt{i}.{key}'] = torch.as_tensor(value).clone()
    return out


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def tmpfile_works(folder):
    fd = None
    folder = ckpt._Folder(str(folder))
    try:
        if ckpt._tmpfile_supported(folder):
            fd = ckpt._create_unnamed(folder)
        return fd is not None
    finally:
        if fd is not None:
            os.close(fd)
        folder.close()


@pytest.fixture(params=['tmpfile', 'named'])
def mode(request, monkeypatch, tmp_path):
    r"""Saves through Linux' O_TMPFILE, or through the named exclusive
    temporary that other systems get."""
    if request.param == 'tmpfile':
        if not tmpfile_works(tmp_path):
            pytest.skip('no O_TMPFILE in this folder')
    else:
        monkeypatch.setattr(ckpt, '_tmpfile_supported', lambda folder: False)
    return request.param


def test_planted_links_are_never_followed(tmp_path, monkeypatch, mode):
    path = tmp_path / 'last.pt'
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    pid = os.getpid()
    predictable = [f'{path}.{pid}.tmp', f'{path}.tmp', f'{path}.tmp.{pid}']
    for name in predictable:
        os.symlink(victim, name)
    # Guessed names: the generator is made to hand them out first.
    guessed = [f'.last.pt.{ckpt._HOST}-{pid}.{i:016x}.tmp' for i in range(3)]
    os.symlink(victim, tmp_path / guessed[0])
    # A dangling link: O_CREAT through it would create its target.
    os.symlink(tmp_path / 'created_by_link', tmp_path / guessed[1])
    (tmp_path / guessed[2]).write_text('someone else')
    names = iter(guessed + ['.last.pt.fresh.tmp'])
    monkeypatch.setattr(ckpt, '_temp_name', lambda base: next(names))

    model, optimizer = build()
    save_checkpoint(path, model, optimizer, epoch=1)
    assert victim.read_text() == 'precious'
    assert not (tmp_path / 'created_by_link').exists()
    assert (tmp_path / guessed[2]).read_text() == 'someone else'
    for name in predictable + [tmp_path / guessed[0]]:
        assert os.path.islink(name) and os.readlink(name) == str(victim)
    assert not (tmp_path / '.last.pt.fresh.tmp').exists()
    other, other_optimizer = build(seed=1)
    assert load_checkpoint(path, other, other_optimizer) == {'epoch': 1}
    assert same(snapshot(other, other_optimizer),
                snapshot(model, optimizer))

    # A link planted at the checkpoint's own path is replaced, not followed.
    path.unlink()
    os.symlink(victim, path)
    monkeypatch.setattr(ckpt, '_temp_name', lambda base: '.last.pt.2.tmp')
    save_checkpoint(path, model)
    assert victim.read_text() == 'precious' and not path.is_symlink()


def test_file_and_folder_are_flushed_before_and_after_rename(
        tmp_path, monkeypatch, mode):
    events = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        events.append('fsync folder' if os.path.isdir(f'/proc/self/fd/{fd}')
                      else 'fsync file')
        fsync(fd)

    def record_replace(*args, **kwargs):
        events.append('replace')
        replace(*args, **kwargs)

    monkeypatch.setattr(ckpt.os, 'fsync', record_fsync)
    monkeypatch.setattr(ckpt.os, 'replace', record_replace)
    save_checkpoint(tmp_path / 'last.pt', build()[0])
    monkeypatch.undo()
    assert events == ['fsync file', 'replace', 'fsync folder']
    assert os.listdir(tmp_path) == ['last.pt']


@pytest.mark.parametrize('fault', [
    OSError(errno.EIO, 'I/O error'),
    OSError(errno.ENOSPC, 'No space left on device'),
    KeyboardInterrupt(),
])
def test_failed_save_leaves_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                      mode, fault):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    save_checkpoint(path, model, optimizer, epoch=1)
    saved = path.read_bytes()

    calls = []
    write = ckpt._write

    def failing(fd, data):
        calls.append(len(data))
        if len(calls) == 5:  # Midway: after a few records.
            raise fault
        write(fd, data)

    monkeypatch.setattr(ckpt, '_write', failing)
    other, other_optimizer = build(seed=1)
    expected = (StorageFullError if getattr(fault, 'errno', 0) == errno.ENOSPC
                else type(fault))
    with pytest.raises(expected) as info:
        save_checkpoint(path, other, other_optimizer, epoch=2)
    if expected is StorageFullError:
        assert info.value.errno == errno.ENOSPC
        assert 'unchanged' in str(info.value)
    elif isinstance(fault, OSError):
        assert info.value is fault  # Not torch.save's RuntimeError.
    assert os.listdir(tmp_path) == ['last.pt']
    assert path.read_bytes() == saved


def test_failed_rename_leaves_no_temporary(tmp_path, monkeypatch, mode):
    (tmp_path / 'last.pt').mkdir()  # os.replace cannot replace a folder.
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / 'last.pt', build()[0])
    assert os.listdir(tmp_path) == ['last.pt']


_CHILD = r'''
import os, sys, time, torch
import torch_autoscale.checkpoint as ckpt
from torch_autoscale.history import History
if {named}:
    ckpt._tmpfile_supported = lambda folder: False
model = torch.nn.Module()
model.lin = torch.nn.Linear(6, 5)
model.history = History(40, 5)
model.history.push(torch.full((40, 5), 7.0))
write = ckpt._write
def blocking(fd, data):
    write(fd, data)
    print('blocked', os.readlink(f'/proc/self/fd/{{fd}}'), flush=True)
    time.sleep(120)
ckpt._write = blocking
ckpt.save_checkpoint({path!r}, model)
'''


@pytest.mark.skipif(sys.platform != 'linux', reason='needs /proc and fork')
def test_killed_save_leaves_nothing(tmp_path, mode):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    save_checkpoint(path, model, optimizer, epoch=1)
    code = _CHILD.format(named=mode == 'named', path=str(path))
    child = subprocess.Popen([sys.executable, '-c', textwrap.dedent(code)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith('blocked'), line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    left = sorted(os.listdir(tmp_path))
    if mode == 'tmpfile':  # The child wrote into a file without a name.
        assert line.rstrip().endswith('(deleted)'), line
        assert left == ['last.pt']
    else:  # The next save removes the dead child's temporary.
        assert len(left) == 2 and left[0].startswith(
            f'.last.pt.{ckpt._HOST}-{child.pid}.')
    other, other_optimizer = build(seed=1)
    assert load_checkpoint(path, other, other_optimizer) == {'epoch': 1}
    assert same(snapshot(other, other_optimizer), snapshot(model, optimizer))
    save_checkpoint(path, other, other_optimizer, epoch=2)
    assert os.listdir(tmp_path) == ['last.pt']


def test_stale_temporaries_of_live_processes_and_others_are_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    host = ckpt._HOST
    other_host = format(int(host, 16) ^ 1, '08x')
    stale = f'.last.pt.{host}-{dead.pid}.{0:016x}.tmp'
    kept = [
        f'.last.pt.{host}-{os.getppid()}.{1:016x}.tmp',  # A live process.
        f'.last.pt.{other_host}-{dead.pid}.{2:016x}.tmp',  # Another host.
        f'.other.pt.{host}-{dead.pid}.{3:016x}.tmp',  # Another checkpoint.
        f'.last.pt.{host}-{dead.pid}.tmp',  # Not one of ours.
    ]
    for name in [stale] + kept:
        (tmp_path / name).write_text('x')
    link = f'.last.pt.{host}-{dead.pid}.{4:016x}.tmp'
    os.symlink(tmp_path / kept[0], tmp_path / link)
    save_checkpoint(tmp_path / 'last.pt', build()[0])
    assert sorted(os.listdir(tmp_path)) == sorted(kept + [link, 'last.pt'])


def flip(path, pattern, offset=1):
    data = bytearray(path.read_bytes())
    at = data.find(pattern)
    assert at >= 0 and data.find(pattern, at + 1) < 0
    data[at + offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize('record', ['histories/history/emb',
                                    'model/lin.weight',
                                    'optimizer/state/0/exp_avg_sq'])
def test_flipped_byte_in_a_record(tmp_path, record):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    tensor = {
        'histories/history/emb': model.history.emb,
        'model/lin.weight': model.lin.weight,
        'optimizer/state/0/exp_avg_sq':
            optimizer.state[model.lin.weight]['exp_avg_sq'],
    }[record]
    save_checkpoint(path, model, optimizer)
    flip(path, tensor.detach().numpy().tobytes(), offset=37)

    other, other_optimizer = build(seed=1)
    before = snapshot(other, other_optimizer)
    with pytest.raises(CheckpointError, match=f"record '{record}'"):
        load_checkpoint(path, other, other_optimizer)
    assert same(snapshot(other, other_optimizer), before)


def test_flipped_byte_in_the_structure(tmp_path):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    save_checkpoint(path, model, optimizer, tag='lr0.03125')
    flip(path, b'lr0.03125', offset=4)  # 'lr0.03125' -> 'lr0.13125'
    other = build(seed=1)[0]
    with pytest.raises(CheckpointError, match='checksum of its structure'):
        load_checkpoint(path, other)


@pytest.mark.parametrize('keep', [0, 100, 0.5, -1])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / 'last.pt'
    model, _ = build()
    save_checkpoint(path, model)
    data = path.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:keep])
    other = build(seed=1)[0]
    before = snapshot(other)
    with pytest.raises(CheckpointError, match='truncated') as info:
        load_checkpoint(path, other)
    assert info.value.__cause__ is not None
    assert same(snapshot(other), before)
    with pytest.raises(FileNotFoundError):  # Missing is not corrupted.
        load_checkpoint(tmp_path / 'missing.pt', other)


def test_every_flipped_byte_is_caught_or_harmless(tmp_path, isolated):
    # A child process, so that a crash on a mapped file fails the test.
    result = isolated(f'''
        import os, random, torch
        from torch_autoscale import load_checkpoint, save_checkpoint
        from torch_autoscale.errors import CheckpointError
        from torch_autoscale.history import History

        def build(seed):
            torch.manual_seed(seed)
            model = torch.nn.Module()
            model.lin = torch.nn.Linear(3, 2)
            model.history = History(4, 2)
            model.history.push(torch.randn(4, 2))
            return model

        path = os.path.join({str(tmp_path)!r}, 'c.pt')
        model = build(0)
        save_checkpoint(path, model, epoch=3)
        data = open(path, 'rb').read()
        expected = [v.clone() for v in model.state_dict().values()]
        expected.append(model.history.pull())
        outcomes = {{'same': 0, 'error': 0}}
        for at in random.Random(0).sample(range(len(data)), 250):
            with open(path, 'wb') as f:
                f.write(data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:])
            other = build(1)
            try:
                extra = load_checkpoint(path, other)
            except CheckpointError:
                outcomes['error'] += 1
                continue
            got = list(other.state_dict().values()) + [other.history.pull()]
            assert extra == {{'epoch': 3}}, at
            assert all(torch.equal(a, b) for a, b in zip(got, expected)), at
            outcomes['same'] += 1
        assert outcomes['error'] > 100, outcomes
    ''')
    assert result['error'] is None, result['message']


def test_incompatible_optimizer_changes_nothing(tmp_path):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    save_checkpoint(path, model, optimizer)

    other, _ = build(seed=1)
    before = snapshot(other)
    sgd = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match='is of Adam but the optimizer '
                       'is SGD'):
        load_checkpoint(path, other, sgd)
    assert same(snapshot(other), before) and not sgd.state

    # The same class over the parameters in another order: torch would load
    # the bias's moments into the weight's state.
    swapped = torch.optim.Adam([other.lin.bias, other.lin.weight])
    with pytest.raises(CheckpointError, match="'exp_avg' of parameter 0 has "
                       r"shape \(5, 6\) but the optimizer needs \(5,\)"):
        load_checkpoint(path, other, swapped)
    assert same(snapshot(other), before) and not swapped.state

    two_groups = torch.optim.Adam([{'params': [other.lin.weight]},
                                   {'params': [other.lin.bias]}])
    with pytest.raises(CheckpointError, match='1 parameter group'):
        load_checkpoint(path, other, two_groups)
    assert same(snapshot(other), before)


def test_failure_while_restoring_puts_model_and_optimizer_back(
        tmp_path, monkeypatch):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    save_checkpoint(path, model, optimizer)
    other, other_optimizer = build(seed=1)
    before = snapshot(other, other_optimizer)

    load = other_optimizer.load_state_dict
    calls = []

    def refuse(state_dict):  # Fails half-way, then puts it back.
        calls.append(1)
        if len(calls) == 1:
            other_optimizer.state.clear()
            raise RuntimeError('refused')
        load(state_dict)

    monkeypatch.setattr(other_optimizer, 'load_state_dict', refuse)
    with pytest.raises(CheckpointError, match='restoring the optimizer'):
        load_checkpoint(path, other, other_optimizer)
    assert same(snapshot(other, other_optimizer), before)
    monkeypatch.undo()

    def broken(state, chunk_rows):  # Fails after model and optimizer.
        raise RuntimeError('I/O error')

    monkeypatch.setattr(other.history, 'load_state', broken)
    with pytest.raises(CheckpointError, match='restoring the histories'):
        load_checkpoint(path, other, other_optimizer)
    assert same(snapshot(other, other_optimizer), before)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_history_overflow_changes_nothing(tmp_path, dtype):
    path = tmp_path / 'last.pt'
    model, optimizer = build()
    table = torch.randn(40, 5)
    table[3, 1], table[17, 4] = 1e5, -7e4
    table[5, 0] = 65504.0  # float16's largest value fits.
    model.history.push(table)
    save_checkpoint(path, model, optimizer)

    other, other_optimizer = build(seed=1, dtype=dtype)
    before = snapshot(other, other_optimizer)
    if dtype == torch.bfloat16:  # Its range is float32's.
        load_checkpoint(path, other, other_optimizer)
        assert torch.equal(other.history.pull(), table.to(dtype).float())
        return
    with pytest.raises(HistoryOverflowError, match=r"in 2 row\(s\) \[3, 17\]"
                       ) as info:
        load_checkpoint(path, other, other_optimizer)
    assert info.value.rows == [3, 17]
    assert same(snapshot(other, other_optimizer), before)


def test_history_overflow_is_checked_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / 'last.pt'
    model, _ = build()
    table = torch.zeros(40, 5)
    table[-1, -1] = 1e6
    model.history.push(table)
    save_checkpoint(path, model)
    chunks = []
    scan = ckpt._scan

    def counting(tensor, on_chunk=None):
        if on_chunk is None:
            return scan(tensor)
        return scan(tensor, lambda s, c: (chunks.append(len(c)),
                                          on_chunk(s, c)))

    monkeypatch.setattr(ckpt, '_scan', counting)
    monkeypatch.setattr(ckpt, 'CHECK_BYTES', 7 * 5 * 4)
    other = build(seed=1, dtype=torch.float16, storage='disk',
                  directory=str(tmp_path))[0]
    with pytest.raises(HistoryOverflowError) as info:
        load_checkpoint(path, other)
    assert info.value.rows == [39] and chunks == [7] * 5 + [5]


def test_versions(tmp_path, caplog):
    path = tmp_path / 'last.pt'
    model, _ = build()
    state = dict(version=1, model=model.state_dict(), optimizer=None,
                 extra={'epoch': 4}, histories={'history': dict(
                     emb=model.history.emb, shape=(40, 5))})
    torch.save(state, path)
    other = build(seed=1)[0]
    with caplog.at_level(logging.WARNING, logger='torch_autoscale'):
        assert load_checkpoint(path, other) == {'epoch': 4}
    assert 'loaded unverified' in caplog.text
    assert same(snapshot(other), snapshot(model))

    torch.save(dict(state, version=99), path)
    with pytest.raises(CheckpointError, match='format version 99'):
        load_checkpoint(path, other)


def test_weights_only_refuses_objects(tmp_path):
    path = tmp_path / 'last.pt'
    model, _ = build()
    save_checkpoint(path, model, ratio=fractions.Fraction(1, 3))
    with pytest.raises(CheckpointError, match="weights_only=False' only if "
                       "you trust the file"):
        load_checkpoint(path, model)
    extra = load_checkpoint(path, model, weights_only=False)
    assert extra == {'ratio': fractions.Fraction(1, 3)}


def test_fifo_or_folder_at_the_path_is_an_error_not_a_hang(tmp_path,
                                                            isolated):
    # A FIFO planted at the path used to block load_checkpoint forever.
    fifo = tmp_path / 'fifo.pt'
    os.mkfifo(fifo)
    result = isolated(f'''
        import torch
        from torch_autoscale import load_checkpoint
        load_checkpoint({str(fifo)!r}, torch.nn.Linear(2, 2))
        ''', timeout=60)
    assert result['error'] == 'CheckpointError', result
    assert 'not a regular file' in result['message']
    with pytest.raises(CheckpointError, match='not a regular file'):
        load_checkpoint(str(tmp_path), torch.nn.Linear(2, 2))


def test_bad_arguments(tmp_path):
    path = str(tmp_path / 'c.pt')
    with pytest.raises(TypeError, match="'model' must be a torch.nn.Module"):
        save_checkpoint(path, {})
    save_checkpoint(path, torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="'optimizer' must be"):
        load_checkpoint(path, torch.nn.Linear(2, 2), optimizer={})
    with pytest.raises(ValueError, match="must not be 'meta'"):
        load_checkpoint(path, torch.nn.Linear(2, 2), map_location='meta')
