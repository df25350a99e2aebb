r"""Distributed training with a peer that stops answering: a rank stopped by
:obj:`SIGSTOP` (stalled, not dead) or killed by :obj:`SIGKILL` must end every
other rank with :class:`~torch_autoscale.errors.DistributedTimeoutError`
naming it, within a bounded time, and the process (and :obj:`torchrun`)
must exit rather than hang. Every process here runs under a deadline and is
killed at the end, so the suite itself cannot hang."""
import datetime
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List

import pytest

from torch_autoscale import distributed as tad
from torch_autoscale.distributed.context import (
    _as_timedelta,
    _free_port,
    _is_peer_failure,
    collective,
)
from torch_autoscale.errors import DistributedTimeoutError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WORKERS = osp.join(osp.dirname(osp.abspath(__file__)),
                   'distributed_workers.py')
EXAMPLE = osp.join(ROOT, 'examples', 'train_gcn_distributed.py')
# The group's timeout in the tests (seconds): short, yet long enough that a
# busy machine does not delay a healthy rank past it.
TIMEOUT = 4.0
# Start-up (imports, graph) of a few processes on a busy two-core machine.
START = 120.0

linux_only = pytest.mark.skipif(not osp.isdir('/proc/self/task'),
                                reason='needs Linux signals and /proc')


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL also ends a stopped process.
    proc.wait(timeout=30)


def launch(tmp_path, fault: str, faulty: int,
           world_size: int) -> Dict[int, dict]:
    r"""Runs ``distributed_workers.py`` in :obj:`world_size` processes, of
    which :obj:`faulty` stalls or dies mid-training; returns how every other
    rank ended (its report, exit code and stderr)."""
    env = dict(os.environ, MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(_free_port()), WORLD_SIZE=str(world_size),
               LOCAL_WORLD_SIZE=str(world_size), OMP_NUM_THREADS='1')
    procs, logs = {}, {}
    try:
        for rank in range(world_size):
            logs[rank] = open(tmp_path / f'stderr_{rank}.txt', 'w+')
            procs[rank] = subprocess.Popen(
                [sys.executable, WORKERS, fault, str(faulty), str(TIMEOUT),
                 str(tmp_path)],
                env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                stdout=subprocess.DEVNULL, stderr=logs[rank])
        deadline = time.monotonic() + START + 4 * TIMEOUT + 30
        out = {}
        for rank, proc in procs.items():
            if rank == faulty:
                continue
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f'rank {rank} hung after rank {faulty} got '
                            f'{fault!r}')
            logs[rank].seek(0)
            report = tmp_path / f'{rank}.json'
            out[rank] = dict(json.loads(report.read_text())
                             if report.exists() else {},
                             returncode=proc.returncode,
                             stderr=logs[rank].read())
        return out
    finally:
        for proc in procs.values():
            kill(proc)
        for log in logs.values():
            log.close()


def check_named(ended: dict, faulty: int) -> None:
    assert ended.get('error') == 'DistributedTimeoutError', ended['stderr']
    assert 'RuntimeError' in ended['mro']  # What callers already catch.
    assert ended['error_rank'] == faulty
    assert f'rank {faulty} stopped answering' in ended['message']
    # The training script ends with the error, not a hang or a signal.
    assert ended['returncode'] == 1
    assert 'DistributedTimeoutError' in ended['stderr']


def children(pid: int) -> List[int]:
    out = []
    for task in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{task}/children') as f:
            out += [int(c) for c in f.read().split()]
    return out


def rank_of(pid: int) -> int:
    with open(f'/proc/{pid}/environ', 'rb') as f:
        for entry in f.read().split(b'\0'):
            if entry.startswith(b'RANK='):
                return int(entry[5:])
    return -1


class StalledExample:
    r"""Runs ``examples/train_gcn_distributed.py`` under :obj:`torchrun` with
    two workers in the background, stops rank 1 (:obj:`SIGSTOP`) once
    training has begun, and records how :obj:`torchrun` ended. Most of its
    minute is :obj:`torchrun`'s wait for the stopped worker, so the other
    tests run meanwhile."""
    def __init__(self):
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc-per-node', '2', EXAMPLE, '--num-nodes', '1000',
               '--num-parts', '8', '--batch-size', '2', '--epochs', '100000',
               '--threads', '1', '--timeout', str(TIMEOUT)]
        self.output = bytearray()
        self.failure = None
        self.returncode = self.seconds = None
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=ROOT,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.driver = threading.Thread(target=self._drive, daemon=True)
        self.driver.start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self.output.extend(chunk)

    def _drive(self) -> None:
        # Rank 0 shows its progress bar once training has begun.
        deadline = time.monotonic() + START
        while b'2 x sharded' not in self.output:
            if self.proc.poll() is not None:
                self.failure = 'torchrun ended before training began'
                return
            if time.monotonic() > deadline:
                self.failure = 'training did not begin'
                return
            time.sleep(0.2)
        stalled = [p for p in children(self.proc.pid) if rank_of(p) == 1]
        if len(stalled) != 1:
            self.failure = f'no single worker of rank 1 ({stalled})'
            return
        os.kill(stalled[0], signal.SIGSTOP)
        start = time.monotonic()
        # The timeout and the roll call, then torchrun stops the stalled
        # worker: SIGTERM, which a stopped process holds, and after its
        # 30 s grace SIGKILL.
        try:
            self.returncode = self.proc.wait(timeout=3 * TIMEOUT + 30 + 40)
        except subprocess.TimeoutExpired:
            self.failure = 'torchrun hung after a worker stalled'
            return
        self.seconds = time.monotonic() - start
        self.reader.join(timeout=10)

    def result(self) -> 'StalledExample':
        self.driver.join(timeout=START + 3 * TIMEOUT + 30 + 60)
        return self

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope='module')
def stalled_example():
    run = StalledExample()
    yield run
    run.close()


@linux_only
@pytest.mark.usefixtures('stalled_example')  # Starts it before the others.
class TestPeerStopsAnswering:
    def test_a_stalled_rank_is_named_by_every_other_rank(self, tmp_path):
        # Rank 1 stops (SIGSTOP) mid-training; ranks 0 and 2 wait in a
        # collective until the timeout, then agree on who stopped answering.
        ended = launch(tmp_path, 'stop', 1, 3)
        assert sorted(ended) == [0, 2]
        for rank in (0, 2):
            check_named(ended[rank], 1)

    def test_a_stalled_rank_serving_the_store_is_named(self, tmp_path):
        # Rank 0 also serves the rendezvous store (env:// without torchrun),
        # so the roll call cannot reach the store either.
        ended = launch(tmp_path, 'stop', 0, 2)
        check_named(ended[1], 0)
        assert 'rendezvous store' in ended[1]['message']

    def test_a_dead_rank_is_named(self, tmp_path):
        # A killed peer closes its connections: the collective fails at
        # once, and the roll call names the rank that never checks in.
        ended = launch(tmp_path, 'kill', 1, 2)
        check_named(ended[0], 1)

    def test_example_under_torchrun_ends_when_a_rank_stalls(
            self, stalled_example):
        run = stalled_example.result()
        text = run.output.decode(errors='replace')
        assert run.failure is None, f'{run.failure}:\n{text[-3000:]}'
        assert run.returncode != 0
        # The worker's error, also in torchrun's failure summary.
        assert 'DistributedTimeoutError' in text
        assert 'rank 1 stopped answering' in text


def test_peer_failures_are_told_from_other_errors():
    for text in ('[gloo/transport/tcp/unbound_buffer.cc:78] Timed out '
                 'waiting 3000ms for recv operation to complete',
                 '[gloo/transport/tcp/pair.cc:553] Connection closed by '
                 'peer [127.0.0.1]:32154',
                 'Application timeout caused pair closure'):
        assert _is_peer_failure(RuntimeError(text))
    assert not _is_peer_failure(
        RuntimeError('mat1 and mat2 shapes cannot be multiplied'))
    assert not _is_peer_failure(ValueError('timed out'))
    assert not _is_peer_failure(DistributedTimeoutError('timed out', 1))


def test_collective_passes_other_errors_through():
    with pytest.raises(RuntimeError, match='shapes'):
        with collective('a step'):
            raise RuntimeError('mat1 and mat2 shapes cannot be multiplied')
    error = DistributedTimeoutError('inner', rank=3)
    with pytest.raises(DistributedTimeoutError) as info:
        with collective('an outer block'):
            raise error
    assert info.value is error


def test_timeout_argument():
    assert _as_timedelta(None) == tad.DEFAULT_TIMEOUT
    # A number becomes a timedelta of that many seconds (a conversion):
    converted = _as_timedelta(2.5)
    assert isinstance(converted, datetime.timedelta)
    assert str(converted) == '0:00:02.500000'
    with pytest.raises(ValueError, match="'timeout'"):
        _as_timedelta(0)
