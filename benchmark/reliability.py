r"""Fault cases of the library, each in a fresh child interpreter, and what
the finite-value checks cost a GAS epoch.

**Fault cases.** Every case feeds one entry point of the library something
that used to crash it, hang it or give silently wrong results (malformed
CSR for the native ops, weights METIS cannot take, bad runs and values for
histories, full disks, killed processes, damaged checkpoints, planted
links, stalled peers, NaN features), and records what happened: a named
error, a correct result, a signal (``signal SIGSEGV``), a hang (past the
case's timeout) or another error. The cases of one class share a child
interpreter (one start-up of PyTorch for all of them); the child reports
when each case starts and ends, so a signal or a hang is charged to the
case that was running, recorded, and the remaining cases continue in a
fresh child. Disk-full cases run on a small ``tmpfs`` mounted per case
(where mounting is permitted, as root) and under a file size limit
(``RLIMIT_FSIZE``).

**Finite checks.** One process trains a GCN with GAS (METIS clusters,
histories in host memory, float32 and float16) on a synthetic graph, epoch
by epoch in turn with :func:`~torch_autoscale.errors.set_finite_checks`
on and off (the order rotating every round), and full-batch epochs for
reference; the ratio of the medians is what the checks cost.

    python benchmark/reliability.py --out benchmark/results/reliability.md
"""
import argparse
import json
import logging
import os
import os.path as osp
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import bench_util

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)

log = logging.getLogger('reliability')

CLASSES = {
    1: 'native memory safety',
    2: 'partitioning',
    3: 'histories',
    4: 'disk full',
    5: 'checkpoints',
    6: 'leftover files',
    7: 'distributed stalls',
    8: 'silent garbage',
}
CORRECT = 'correct result'
# How long a child may take to start (import PyTorch) and between cases.
START_TIMEOUT = 120.0
MARK = '@@RELIABILITY@@'


@dataclass
class Case:
    r"""One fault case: :obj:`code` runs in a child interpreter after its
    group's setup, with :obj:`TMP` (a fresh folder) and, for
    :obj:`tmpfs` cases, :obj:`SMALL` (a freshly mounted 4 MiB tmpfs) set.
    :obj:`expected` is the class name of the error it must raise or
    :obj:`CORRECT` (the code's own assertions hold); :obj:`match` is a
    regular expression the error's message must contain."""
    cls: int
    name: str
    expected: str
    code: str
    match: str = ''
    timeout: float = 30.0
    quick: bool = False
    tmpfs: bool = False


@dataclass
class Group:
    r"""Cases that share one child interpreter."""
    name: str
    setup: str
    cases: List[Case]
    env: Dict[str, str] = field(default_factory=dict)
    fsize: Optional[int] = None  # RLIMIT_FSIZE of the child, in bytes.


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip('\n') + '\n'


# Class 1: native memory safety ###############################################

NATIVE_SETUP = '''
import torch
from torch_autoscale import ops
'''

# (op, case, call, message). Malformed CSR, out-of-range ids and aliasing
# for every native op (test/reliability/test_native.py and more).
NATIVE = [
    ('csr_transpose', 'row pointer past the entries [0, 4, 3]',
     'ops.csr_transpose(torch.tensor([0, 4, 3]), torch.tensor([0, 1, 2]), 3)',
     'non-decreasing'),
    ('csr_transpose', 'row pointer entry 2**62',
     'ops.csr_transpose(torch.tensor([0, 2**62, 3]), '
     'torch.tensor([0, 1, 2]), 3)', 'non-decreasing'),
    ('csr_transpose', 'negative row pointer',
     'ops.csr_transpose(torch.tensor([-4, 1, 3]), torch.tensor([0, 1, 2]), 3)',
     'must run from 0'),
    ('csr_transpose', 'row pointer ends past col',
     'ops.csr_transpose(torch.tensor([0, 1, 5]), torch.tensor([0, 1, 2]), 3)',
     'must run from 0'),
    ('csr_transpose', 'columns -5 and 2**62',
     'ops.csr_transpose(torch.tensor([0, 1, 3]), '
     'torch.tensor([0, -5, 2**62]), 3)', "'col' contains column"),
    ('csr_transpose', 'negative num_cols',
     'ops.csr_transpose(torch.tensor([0, 1, 3]), torch.tensor([0, 1, 2]), -1)',
     'non-negative'),
    ('transpose_csr', 'unchecked sparse CSR tensor [0, 4, 3]',
     'from torch_autoscale.utils import transpose_csr\n'
     'adj = torch.sparse_csr_tensor(torch.tensor([0, 4, 3]), '
     'torch.tensor([0, 1, 2]), torch.ones(3), (2, 3), '
     'check_invariants=False)\n'
     'transpose_csr(adj)', 'non-decreasing'),
    ('relabel_one_hop', 'row pointer past the entries [0, 9, 3]',
     'ops.relabel_one_hop(torch.tensor([0, 9, 3]), torch.tensor([0, 1, 0]), '
     'None, torch.tensor([0]))', 'not a valid CSR pointer'),
    ('relabel_one_hop', 'negative row pointer',
     'ops.relabel_one_hop(torch.tensor([-5, 1, 2]), torch.tensor([1, 0]), '
     'None, torch.tensor([0, 1]))', 'must start at 0'),
    ('relabel_one_hop', 'row pointer decreasing within',
     'ops.relabel_one_hop(torch.tensor([0, 3, 2, 3]), '
     'torch.tensor([1, 0, 2]), None, torch.tensor([1]))',
     'not a valid CSR pointer'),
    ('relabel_one_hop', 'node id 2**62',
     'ops.relabel_one_hop(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), '
     'None, torch.tensor([2**62]))', "'n_id' contains node"),
    ('relabel_one_hop', 'node id -1',
     'ops.relabel_one_hop(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), '
     'None, torch.tensor([-1]))', "'n_id' contains node"),
    ('relabel_one_hop', 'columns 2**40 and -3',
     'ops.relabel_one_hop(torch.tensor([0, 1, 2]), '
     'torch.tensor([2**40, -3]), None, torch.tensor([0, 1]))',
     "'col' contains node"),
    ('relabel_one_hop', 'edge values shorter than col',
     'ops.relabel_one_hop(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), '
     'torch.ones(1), torch.tensor([0, 1]))', "'value' must hold"),
    ('read_async', 'src aliases buffer',
     'src = torch.randn(10, 4)\n'
     'ops.read_async(src, None, None, torch.tensor([3, 1]), src, '
     'torch.empty(2, 4))', 'share memory'),
    ('read_async', 'dst overlaps buffer',
     'src, buf = torch.randn(10, 4), torch.empty(4, 4)\n'
     'ops.read_async(src, None, None, torch.tensor([3, 1]), buf, buf[1:])',
     'share memory'),
    ('read_async', 'index aliases buffer',
     'src, buf = torch.arange(20).view(10, 2), torch.zeros(4, 2, '
     'dtype=torch.long)\n'
     'ops.read_async(src, None, None, buf.view(-1)[:2], buf, buf)',
     'share memory'),
    ('read_async', 'negative count',
     'src = torch.randn(10, 4)\n'
     'ops.read_async(src, torch.tensor([0, 5]), torch.tensor([3, -2]), '
     'torch.tensor([], dtype=torch.long), torch.empty(4, 4), '
     'torch.empty(4, 4))', 'out of range'),
    ('read_async', 'run past the end of src',
     'ops.read_async(torch.randn(10, 4), torch.tensor([8]), torch.tensor([5]),'
     ' torch.tensor([], dtype=torch.long), torch.empty(5, 4), '
     'torch.empty(5, 4))', 'out of range'),
    ('read_async', 'index row 2**40',
     'ops.read_async(torch.randn(10, 4), None, None, '
     'torch.tensor([3, 2**40]), torch.empty(2, 4), torch.empty(2, 4))',
     "'index' contains row"),
    ('read_async', 'buffer smaller than the read',
     'ops.read_async(torch.randn(10, 4), None, None, torch.tensor([3, 1, 2]),'
     ' torch.empty(2, 4), torch.empty(3, 4))', "'buffer' has 2 rows"),
    ('write_async', 'src aliases dst',
     'dst = torch.randn(10, 4)\n'
     'ops.write_async(dst[2:5], torch.tensor([4]), torch.tensor([3]), dst)',
     'share memory'),
    ('write_async', 'offset aliases dst',
     'dst = torch.zeros(10, 2, dtype=torch.float64)\n'
     'ops.write_async(torch.randn(1, 2, dtype=torch.float64), '
     'dst.view(torch.int64)[0:1, 0], torch.tensor([1]), dst)',
     'share memory'),
    ('write_async', 'overlapping runs',
     'dst = torch.zeros(10, 4)\n'
     'ops.write_async(torch.randn(5, 4), torch.tensor([0, 2]), '
     'torch.tensor([3, 2]), dst)', 'must not overlap'),
    ('write_async', 'offset 2**62',
     'ops.write_async(torch.randn(1, 4), torch.tensor([2**62]), '
     'torch.tensor([1]), torch.zeros(10, 4))', 'out of range'),
    ('write_async', 'negative count',
     'ops.write_async(torch.randn(2, 4), torch.tensor([0, 3]), '
     'torch.tensor([4, -2]), torch.zeros(10, 4))', 'out of range'),
    ('write_async', 'src shorter than the runs',
     'ops.write_async(torch.randn(2, 4), torch.tensor([0]), '
     'torch.tensor([5]), torch.zeros(10, 4))', "'src' has 2 rows"),
]

NATIVE_VALID = '''
# After the faults, valid calls still match the pure-PyTorch references.
g = torch.Generator().manual_seed(0)
num = 300
col = torch.randint(0, num, (3000, ), generator=g)
rowptr = torch.randint(0, 3000, (num - 1, ), generator=g).sort().values
rowptr = torch.cat([torch.tensor([0]), rowptr, torch.tensor([3000])])
for a, b in zip(ops.csr_transpose(rowptr, col, num),
                ops.csr_transpose_reference(rowptr, col, num)):
    assert torch.equal(a, b)
n_id = torch.randperm(num, generator=g)[:50]
value = torch.randn(3000, generator=g)
for a, b in zip(ops.relabel_one_hop(rowptr, col, value, n_id),
                ops.relabel_one_hop_reference(rowptr, col, value, n_id)):
    assert torch.equal(a, b)
src, dst = torch.randn(40, 3, generator=g), torch.zeros(40, 3)
offset, count = torch.tensor([30, 0, 12]), torch.tensor([5, 4, 6])
rows = torch.cat([torch.arange(30, 35), torch.arange(0, 4),
                  torch.arange(12, 18)])
ops.write_async(src[:15], offset, count, dst)
ops.synchronize()
assert torch.equal(dst[rows], src[:15])
buf, out = torch.empty(17, 3), torch.empty(17, 3)
ops.read_async(dst, offset, count, torch.tensor([1, 31]), buf, out)
ops.synchronize()
assert torch.equal(out, torch.cat([src[:15], dst[[1, 31]]]))
'''


def native_cases(path: str) -> List[Case]:
    out = [
        Case(1, f'{op}: {case} ({path})', 'ValueError', call, re.escape(msg),
             quick=path == 'native' and i in (0, 20))
        for i, (op, case, call, msg) in enumerate(NATIVE)
    ]
    out.append(Case(1, f'all ops: valid input after the faults ({path})',
                    CORRECT, NATIVE_VALID))
    return out


# Class 2: partitioning #######################################################

PARTITION_SETUP = '''
import torch
from torch_geometric.utils import grid
from torch_autoscale.partition import lpmetis, metis, part_sizes, partition
from torch_autoscale.partition import partition_report

edge_index, _ = grid(45, 45)
num_nodes, num_edges, k = 45 * 45, edge_index.size(1), 8

def run(method, edge_weight=None, node_weight=None, seed=0):
    if method == 'lpmetis':
        assert node_weight is None
        return lpmetis(edge_index, num_nodes, k, edge_weight=edge_weight,
                       seed=seed, verbose=False)
    return metis(edge_index, num_nodes, k, edge_weight=edge_weight,
                 node_weight=node_weight, verbose=False)

def balanced(cluster):
    sizes = part_sizes(cluster, k)
    assert int(sizes.max() - sizes.min()) <= 1, sizes.tolist()

gen = torch.Generator().manual_seed(0)
small = torch.randint(1, 2**10, (num_edges, ), generator=gen)
huge = small * 2**50 + torch.randint(0, 2**40, (num_edges, ), generator=gen)

def report(cluster):
    out = partition_report(edge_index, cluster, k, edge_weight=small)
    assert out.num_empty == 0 and out.size_ratio <= 1.1, out
    return out

def bad(value, dtype=torch.float, size=None):
    weight = torch.ones(size or num_edges, dtype=dtype)
    weight[3] = value
    return weight
'''


def partition_cases() -> List[Case]:
    out = []
    for method in ('metis', 'lpmetis'):
        seeds = 'range(3)' if method == 'lpmetis' else 'range(1)'
        for dtype in ('float', 'long'):
            out.append(Case(
                2, f'{method}: all-zero edge weights ({dtype})', CORRECT,
                f'for seed in {seeds}:\n'
                f'    balanced(run({method!r}, torch.zeros(num_edges, '
                f'dtype=torch.{dtype}), seed=seed))\n'))
        out.append(Case(
            2, f'{method}: integer edge weights near 2**60', CORRECT,
            f'ref, out = report(run({method!r}, small)), '
            f'report(run({method!r}, huge))\n'
            f'assert abs(out.edge_cut - ref.edge_cut) <= 0.01, (out, ref)\n'))
        out.append(Case(
            2, f'{method}: float edge weights near 1e300 and 1e-300', CORRECT,
            f'base = torch.rand(num_edges, generator=gen, '
            f'dtype=torch.double) + 0.01\n'
            f'ref = report(run({method!r}, base)).edge_cut\n'
            f'for w in (base * 1e300, base * 1e-300):\n'
            f'    assert abs(report(run({method!r}, w)).edge_cut - ref) '
            f'<= 0.01\n'))
        for label, value, dtype in (('negative', '-1.0', 'float'),
                                    ('negative integer', '-1', 'long'),
                                    ('NaN', "float('nan')", 'float'),
                                    ('infinite', "float('inf')", 'float')):
            out.append(Case(
                2, f'{method}: {label} edge weight', 'PartitionInputError',
                f'partition(edge_index, k, method={method!r}, '
                f'num_nodes=num_nodes, edge_weight=bad({value}, '
                f'torch.{dtype}))\n', 'edge_weight',
                quick=method == 'metis' and label == 'NaN'))
    out += [
        Case(2, 'metis: all-zero edge weights, node weights', CORRECT,
             '''
             node_weight = torch.arange(num_nodes) % 5 + 1
             cluster = run('metis', torch.zeros(num_edges), node_weight)
             part = torch.zeros(k, dtype=torch.long)
             part.index_add_(0, cluster, node_weight)
             mean = int(node_weight.sum()) / k
             assert float((part - mean).abs().max()) <= 5, part.tolist()
             '''),
        Case(2, 'metis: node weights near 2**60', CORRECT, '''
             node_small = torch.randint(1, 10, (num_nodes, ), generator=gen)
             node_huge = node_small * 2**56 + torch.randint(
                 0, 2**30, (num_nodes, ), generator=gen)
             for edge_weight in (small, huge):
                 cluster = run('metis', edge_weight, node_huge)
                 report(cluster)
                 part = torch.zeros(k, dtype=torch.double)
                 part.index_add_(0, cluster, node_small.double())
                 assert float(part.max() / part.mean()) <= 1.05, part
             '''),
        Case(2, 'metis: every weight exactly 2**60', CORRECT, '''
             out = run('metis', torch.full((num_edges, ), 2**60),
                       torch.full((num_nodes, ), 2**60))
             assert torch.equal(out, run('metis'))
             '''),
        Case(2, 'metis: NaN node weight', 'PartitionInputError',
             "run('metis', node_weight=bad(float('nan'), size=num_nodes))",
             'node_weight'),
        Case(2, 'metis: negative node weight', 'PartitionInputError',
             "run('metis', node_weight=bad(-2, torch.long, num_nodes))",
             'node_weight'),
        Case(2, 'metis: all-zero node weights', 'PartitionInputError',
             "run('metis', node_weight=torch.zeros(num_nodes))",
             'node_weight.*positive'),
        Case(2, 'partition_report: NaN edge weight', 'PartitionInputError',
             "partition_report(edge_index, torch.arange(num_nodes) % k, k, "
             "edge_weight=bad(float('nan')))", 'edge_weight'),
    ]
    return out


# Class 3: histories ##########################################################

HISTORY_SETUP = '''
import torch
from torch_autoscale.errors import (HistoryOverflowError, NonFiniteError,
                                    set_finite_checks)
from torch_autoscale.history import History

PUSHES = {
    'ids': dict(n_id=torch.tensor([6, 2, 9])),
    'runs': dict(offset=torch.tensor([6, 1]), count=torch.tensor([1, 2])),
    'table': {},
}

def rejected(history, call):
    before = history.emb.clone()
    try:
        call()
    finally:
        assert torch.equal(history.emb, before), 'the table changed'
'''


def history_cases() -> List[Case]:
    out = []
    for label, offset, count in (('negative count', [0, 5], [3, -2]),
                                 ('run starting at -1', [-1], [3]),
                                 ('run past the end', [8], [3]),
                                 ('offset 2**62', [2**62], [1]),
                                 ('overlapping runs', [0, 2], [3, 2])):
        rows = max(sum(c for c in count if c > 0), 0)
        out.append(Case(
            3, f'push: {label}', 'ValueError',
            f'h = History(10, 4)\n'
            f'rejected(h, lambda: h.push(torch.randn({rows}, 4), '
            f'offset=torch.tensor({offset}), count=torch.tensor({count})))\n',
            re.escape("'offset'/'count'"), quick=label == 'negative count'))
    nodes = {'ids': [2], 'runs': [1], 'table': [1]}
    nan_rows = {'ids': [6, 2], 'runs': [6, 1], 'table': [0, 1]}
    for how in ('ids', 'runs', 'table'):
        size = 10 if how == 'table' else 3
        out.append(Case(
            3, f'push: 1e5 into float16 by {how}', 'HistoryOverflowError',
            f'h = History(10, 4, dtype=torch.float16)\n'
            f'x = torch.randn({size}, 4)\n'
            f'x[1, 2] = 1e5\n'
            f'try:\n'
            f'    rejected(h, lambda: h.push(x, **PUSHES[{how!r}]))\n'
            f'except HistoryOverflowError as e:\n'
            f'    assert e.rows == {nodes[how]}, e.rows\n'
            f'    raise\n', '65504', quick=how == 'ids'))
        out.append(Case(
            3, f'push: NaN and -inf by {how}', 'NonFiniteError',
            f'h = History(10, 4)\n'
            f'x = torch.randn({size}, 4)\n'
            f"x[1, 2], x[0, 0] = float('nan'), float('-inf')\n"
            f'try:\n'
            f'    rejected(h, lambda: h.push(x, **PUSHES[{how!r}]))\n'
            f'except NonFiniteError as e:\n'
            f'    assert e.rows == {nan_rows[how]}, e.rows\n'
            f'    raise\n', 'NaN or infinite'))
    out += [
        Case(3, 'push: NaN into float16', 'NonFiniteError', '''
             h = History(10, 4, dtype=torch.float16)
             x = torch.randn(3, 4)
             x[2, 1] = float('nan')
             rejected(h, lambda: h.push(x, n_id=torch.tensor([1, 2, 3])))
             ''', 'NaN or infinite'),
        Case(3, 'push: 1e5 into a float16 disk history',
             'HistoryOverflowError', '''
             h = History(10, 4, dtype=torch.float16, storage='disk',
                         directory=TMP)
             x = torch.randn(10, 4)
             x[7, 0] = -1e5
             try:
                 rejected(h, lambda: h.push(x))
             except HistoryOverflowError as e:
                 assert e.rows == [7], e.rows
                 raise
             ''', '65504'),
        Case(3, 'push: 1e5 into bfloat16 and float32', CORRECT, '''
             for dtype in (torch.bfloat16, torch.float32):
                 h = History(10, 4, dtype=dtype)
                 x = torch.randn(3, 4)
                 x[1, 2] = 1e5
                 h.push(x, n_id=torch.tensor([6, 2, 9]))
                 assert torch.equal(h.pull(torch.tensor([6, 2, 9])),
                                    x.to(dtype).to(h.pull().dtype))
             '''),
        Case(3, 'set_finite_checks(False) lets overflow through, True '
             'stops it again', 'HistoryOverflowError', '''
             h = History(4, 2, dtype=torch.float16)
             set_finite_checks(False)
             try:
                 h.push(torch.full((4, 2), 1e5))
             finally:
                 set_finite_checks(True)
             assert h.emb.isinf().all()
             h.push(torch.full((4, 2), 1e5))
             '''),
    ]
    return out


# Class 4: disk full ##########################################################

CHECKPOINT_HELPERS = '''
import os, torch
import torch_autoscale.checkpoint as ckpt
from torch_autoscale import load_checkpoint, save_checkpoint
from torch_autoscale.errors import (CheckpointError, HistoryOverflowError,
                                    StorageFullError)
from torch_autoscale.history import History

def build(seed=0, dtype=None, storage='host', directory=None, rows=40):
    torch.manual_seed(seed)
    model = torch.nn.Module()
    model.lin = torch.nn.Linear(6, 5)
    model.history = History(rows, 5, dtype=dtype, storage=storage,
                            directory=directory)
    model.history.push(torch.randn(rows, 5))
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

def unchanged(model, optimizer, call):
    before = snapshot(model, optimizer)
    try:
        call()
    finally:
        assert same(snapshot(model, optimizer), before), 'model changed'

def fill(folder):
    # Unbuffered, so that closing the file has nothing left to write.
    with open(os.path.join(folder, 'filler'), 'wb', buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    f.write(b'x' * chunk)
            except OSError:
                pass
'''


def disk_cases() -> Dict[str, List[Case]]:
    fsize = [
        Case(4, 'disk history beyond RLIMIT_FSIZE (4 MiB table, 1 MiB '
             'limit)', 'StorageFullError', '''
             try:
                 History(1 << 18, 4, storage='disk', directory=TMP)
             finally:
                 assert os.listdir(TMP) == [], os.listdir(TMP)
             ''', 'cannot be reserved', quick=True),
        Case(4, 'checkpoint save beyond RLIMIT_FSIZE', 'StorageFullError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer, epoch=1)
             big = build(seed=1, rows=1 << 16)[0]  # 1.25 MiB of history.
             try:
                 save_checkpoint(path, big, epoch=2)
             finally:
                 assert os.listdir(TMP) == ['last.pt'], os.listdir(TMP)
                 other, other_optimizer = build(seed=2)
                 assert load_checkpoint(path, other, other_optimizer) == \\
                     {'epoch': 1}
                 assert same(snapshot(other, other_optimizer),
                             snapshot(model, optimizer))
             ''', 'unchanged'),
    ]
    tmpfs = [
        Case(4, 'disk history on a full 4 MiB tmpfs', 'StorageFullError', '''
             h = History(1 << 16, 12, storage='disk', directory=SMALL)
             h.push(torch.ones(1 << 16, 12))  # 3 MiB of 4: fits.
             try:
                 History(1 << 16, 12, storage='disk', directory=SMALL)
             finally:
                 assert os.listdir(SMALL) == [], os.listdir(SMALL)
             assert bool((h.pull() == 1).all())
             ''', 'cannot be reserved', tmpfs=True),
        Case(4, 'checkpoint save onto a full tmpfs', 'StorageFullError', '''
             path = os.path.join(SMALL, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer, epoch=1)
             fill(SMALL)
             big = build(seed=1, rows=1 << 14)[0]
             try:
                 save_checkpoint(path, big, epoch=2)
             finally:
                 assert sorted(os.listdir(SMALL)) == ['filler', 'last.pt'], \\
                     os.listdir(SMALL)
                 other, other_optimizer = build(seed=2)
                 assert load_checkpoint(path, other, other_optimizer) == \\
                     {'epoch': 1}
                 assert same(snapshot(other, other_optimizer),
                             snapshot(model, optimizer))
             ''', 'unchanged', tmpfs=True),
        Case(4, 'checkpoint load into a disk history after the tmpfs filled',
             CORRECT, '''
             src = torch.nn.Module()
             src.h = History(1 << 16, 8)
             src.h.push(torch.full((1 << 16, 8), 0.5))
             save_checkpoint(os.path.join(TMP, 'ckpt.pt'), src)
             dst = torch.nn.Module()
             dst.h = History(1 << 16, 8, storage='disk', directory=SMALL)
             fill(SMALL)
             load_checkpoint(os.path.join(TMP, 'ckpt.pt'), dst)
             assert bool((dst.h.pull() == 0.5).all())
             ''', tmpfs=True),
        Case(4, 'push into a disk history after the tmpfs filled', CORRECT,
             '''
             h = History(1 << 16, 8, storage='disk', directory=SMALL)
             fill(SMALL)
             h.push(torch.full((1 << 16, 8), 0.25))
             assert bool((h.pull() == 0.25).all())
             ''', tmpfs=True),
    ]
    return {'fsize': fsize, 'tmpfs': tmpfs}


# Class 5: checkpoints ########################################################

CHECKPOINT_SETUP = CHECKPOINT_HELPERS + '''
def flip(path, pattern, offset=1):
    data = bytearray(open(path, 'rb').read())
    at = data.find(pattern)
    assert at >= 0 and data.find(pattern, at + 1) < 0
    data[at + offset] ^= 0x01
    with open(path, 'wb') as f:
        f.write(bytes(data))

def planted_links(named):
    path = os.path.join(TMP, 'last.pt')
    victim = os.path.join(TMP, 'victim.txt')
    with open(victim, 'w') as f:
        f.write('precious')
    pid = os.getpid()
    predictable = [f'{path}.{pid}.tmp', f'{path}.tmp', f'{path}.tmp.{pid}']
    for name in predictable:
        os.symlink(victim, name)
    guessed = [f'.last.pt.{ckpt._HOST}-{pid}.{i:016x}.tmp' for i in range(3)]
    os.symlink(victim, os.path.join(TMP, guessed[0]))
    os.symlink(os.path.join(TMP, 'created_by_link'),
               os.path.join(TMP, guessed[1]))  # Dangling.
    with open(os.path.join(TMP, guessed[2]), 'w') as f:
        f.write('someone else')
    names = iter(guessed + ['.last.pt.fresh.tmp'])
    real = ckpt._temp_name, ckpt._tmpfile_supported
    ckpt._temp_name = lambda base: next(names)
    if named:
        ckpt._tmpfile_supported = lambda folder: False
    try:
        model, optimizer = build()
        save_checkpoint(path, model, optimizer, epoch=1)
    finally:
        ckpt._temp_name, ckpt._tmpfile_supported = real
    assert open(victim).read() == 'precious'
    assert not os.path.exists(os.path.join(TMP, 'created_by_link'))
    assert open(os.path.join(TMP, guessed[2])).read() == 'someone else'
    for name in predictable + [os.path.join(TMP, guessed[0])]:
        assert os.path.islink(name) and os.readlink(name) == victim
    other, other_optimizer = build(seed=1)
    assert load_checkpoint(path, other, other_optimizer) == {'epoch': 1}
    assert same(snapshot(other, other_optimizer), snapshot(model, optimizer))
'''


def checkpoint_cases() -> List[Case]:
    out = []
    for record, tensor in (
            ('histories/history/emb', 'model.history.emb'),
            ('model/lin.weight', 'model.lin.weight'),
            ('optimizer/state/0/exp_avg_sq',
             "optimizer.state[model.lin.weight]['exp_avg_sq']")):
        out.append(Case(
            5, f'flipped byte in record {record}', 'CheckpointError',
            f"path = os.path.join(TMP, 'last.pt')\n"
            f'model, optimizer = build()\n'
            f'save_checkpoint(path, model, optimizer)\n'
            f'flip(path, {tensor}.detach().numpy().tobytes(), offset=37)\n'
            f'other, other_optimizer = build(seed=1)\n'
            f'unchanged(other, other_optimizer, lambda: load_checkpoint(\n'
            f'    path, other, other_optimizer))\n',
            re.escape(f"record '{record}'"),
            quick=record == 'model/lin.weight'))
    for label, keep in (('0 bytes', '0'), ('100 bytes', '100'),
                        ('half', 'len(data) // 2'),
                        ('all but the last byte', 'len(data) - 1')):
        out.append(Case(
            5, f'truncated to {label}', 'CheckpointError',
            f"path = os.path.join(TMP, 'last.pt')\n"
            f'save_checkpoint(path, build()[0])\n'
            f"data = open(path, 'rb').read()\n"
            f"open(path, 'wb').write(data[:{keep}])\n"
            f'other = build(seed=1)[0]\n'
            f'unchanged(other, None, lambda: load_checkpoint(path, other))\n',
            'truncated', quick=label == 'half'))
    out += [
        Case(5, 'flipped byte in the structure', 'CheckpointError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer, tag='lr0.03125')
             flip(path, b'lr0.03125', offset=4)
             other = build(seed=1)[0]
             unchanged(other, None, lambda: load_checkpoint(path, other))
             ''', 'checksum of its structure'),
        Case(5, '200 random flipped bytes: each caught or harmless', CORRECT,
             '''
             import random
             def small(seed):
                 torch.manual_seed(seed)
                 model = torch.nn.Module()
                 model.lin = torch.nn.Linear(3, 2)
                 model.history = History(4, 2)
                 model.history.push(torch.randn(4, 2))
                 return model
             path = os.path.join(TMP, 'c.pt')
             model = small(0)
             save_checkpoint(path, model, epoch=3)
             data = open(path, 'rb').read()
             expected = [v.clone() for v in model.state_dict().values()]
             expected.append(model.history.pull())
             errors = 0
             for at in random.Random(0).sample(range(len(data)), 200):
                 with open(path, 'wb') as f:
                     f.write(data[:at] + bytes([data[at] ^ 0x40]) +
                             data[at + 1:])
                 other = small(1)
                 try:
                     extra = load_checkpoint(path, other)
                 except CheckpointError:
                     errors += 1
                     continue
                 got = list(other.state_dict().values()) + [
                     other.history.pull()]
                 assert extra == {'epoch': 3}, at
                 assert all(torch.equal(a, b)
                            for a, b in zip(got, expected)), at
             assert errors > 80, errors
             '''),
        Case(5, 'links planted at predictable temporary names (O_TMPFILE)',
             CORRECT, 'planted_links(named=False)'),
        Case(5, 'links planted at predictable temporary names (named '
             'temporaries)', CORRECT, 'planted_links(named=True)'),
        Case(5, 'link planted at the checkpoint path itself', CORRECT, '''
             path = os.path.join(TMP, 'last.pt')
             victim = os.path.join(TMP, 'victim.txt')
             open(victim, 'w').write('precious')
             os.symlink(victim, path)
             save_checkpoint(path, build()[0])
             assert open(victim).read() == 'precious'
             assert not os.path.islink(path)
             '''),
        Case(5, 'optimizer of another class (SGD for Adam)',
             'CheckpointError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer)
             other = build(seed=1)[0]
             sgd = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
             try:
                 unchanged(other, None, lambda: load_checkpoint(path, other,
                                                                sgd))
             finally:
                 assert not sgd.state
             ''', 'is of Adam but the optimizer is SGD'),
        Case(5, 'optimizer over the parameters in another order',
             'CheckpointError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer)
             other = build(seed=1)[0]
             swapped = torch.optim.Adam([other.lin.bias, other.lin.weight])
             try:
                 unchanged(other, None, lambda: load_checkpoint(path, other,
                                                                swapped))
             finally:
                 assert not swapped.state
             ''', re.escape("'exp_avg' of parameter 0 has shape (5, 6)")),
        Case(5, 'optimizer with another number of parameter groups',
             'CheckpointError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer)
             other = build(seed=1)[0]
             two = torch.optim.Adam([{'params': [other.lin.weight]},
                                     {'params': [other.lin.bias]}])
             unchanged(other, None, lambda: load_checkpoint(path, other, two))
             ''', '1 parameter group'),
        Case(5, 'float32 checkpoint (1e5, -7e4) into a float16 history',
             'HistoryOverflowError', '''
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             table = torch.randn(40, 5)
             table[3, 1], table[17, 4] = 1e5, -7e4
             table[5, 0] = 65504.0  # float16's largest value fits.
             model.history.push(table)
             save_checkpoint(path, model, optimizer)
             other, other_optimizer = build(seed=1, dtype=torch.float16)
             try:
                 unchanged(other, other_optimizer, lambda: load_checkpoint(
                     path, other, other_optimizer))
             except HistoryOverflowError as e:
                 assert e.rows == [3, 17], e.rows
                 raise
             ''', re.escape('in 2 row(s) [3, 17]')),
        Case(5, 'float32 checkpoint (1e6) into a float16 disk history',
             'HistoryOverflowError', '''
             path = os.path.join(TMP, 'last.pt')
             model = build()[0]
             table = torch.zeros(40, 5)
             table[-1, -1] = 1e6
             model.history.push(table)
             save_checkpoint(path, model)
             other = build(seed=1, dtype=torch.float16, storage='disk',
                           directory=TMP)[0]
             unchanged(other, None, lambda: load_checkpoint(path, other))
             ''', re.escape('[39]')),
        Case(5, 'checkpoint of format version 99', 'CheckpointError', '''
             path = os.path.join(TMP, 'last.pt')
             model = build()[0]
             torch.save(dict(version=99, model=model.state_dict(),
                             optimizer=None, extra={}, histories={}), path)
             unchanged(model, None, lambda: load_checkpoint(path, model))
             ''', 'format version 99'),
        Case(5, 'objects in a checkpoint (weights_only)', 'CheckpointError',
             '''
             import fractions
             path = os.path.join(TMP, 'last.pt')
             model = build()[0]
             save_checkpoint(path, model, ratio=fractions.Fraction(1, 3))
             load_checkpoint(path, model)
             ''', "weights_only=False' only if you trust the file"),
    ]
    return out


# Class 6: leftover files #####################################################

LEFTOVER_SETUP = CHECKPOINT_HELPERS + r'''
import signal, subprocess, sys, textwrap, time

KILLED_SAVE = """
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
"""

def killed_save(named):
    path = os.path.join(TMP, 'last.pt')
    model, optimizer = build()
    save_checkpoint(path, model, optimizer, epoch=1)
    child = subprocess.Popen(
        [sys.executable, '-c', KILLED_SAVE.format(named=named, path=path)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith('blocked'), line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    left = sorted(os.listdir(TMP))
    if not named:  # The child wrote into a file without a name.
        assert line.rstrip().endswith('(deleted)'), line
        assert left == ['last.pt'], left
    else:  # The next save removes the dead child's temporary.
        assert len(left) == 2 and left[0].startswith(
            f'.last.pt.{ckpt._HOST}-{child.pid}.'), left
    other, other_optimizer = build(seed=1)
    assert load_checkpoint(path, other, other_optimizer) == {'epoch': 1}
    assert same(snapshot(other, other_optimizer), snapshot(model, optimizer))
    save_checkpoint(path, other, other_optimizer, epoch=2)
    assert os.listdir(TMP) == ['last.pt'], os.listdir(TMP)
'''


def leftover_cases() -> List[Case]:
    return [
        Case(6, 'SIGKILL mid checkpoint save (O_TMPFILE)', CORRECT,
             'killed_save(named=False)', timeout=90),
        Case(6, 'SIGKILL mid checkpoint save (named temporary)', CORRECT,
             'killed_save(named=True)', timeout=90),
        Case(6, 'SIGKILL mid disk-history creation', CORRECT, '''
             code = textwrap.dedent(f"""
                 import time, torch
                 real = torch.from_file
                 def slow(*args, **kwargs):
                     out = real(*args, **kwargs)
                     print('mapped', flush=True)
                     time.sleep(60)
                     return out
                 torch.from_file = slow
                 from torch_autoscale.history import History
                 History(1000, 8, storage='disk', directory={TMP!r})
                 """)
             child = subprocess.Popen([sys.executable, '-c', code],
                                      stdout=subprocess.PIPE, text=True)
             try:
                 assert child.stdout.readline().strip() == 'mapped'
                 assert os.listdir(TMP) == []  # The file never had a name.
             finally:
                 child.kill()
                 child.wait(timeout=30)
                 child.stdout.close()
             time.sleep(0.1)
             assert os.listdir(TMP) == [], os.listdir(TMP)
             ''', timeout=90),
        Case(6, 'I/O error mid checkpoint save: old file, no temporary',
             'OSError', '''
             import errno
             path = os.path.join(TMP, 'last.pt')
             model, optimizer = build()
             save_checkpoint(path, model, optimizer, epoch=1)
             saved = open(path, 'rb').read()
             write, calls = ckpt._write, []
             def failing(fd, data):
                 calls.append(len(data))
                 if len(calls) == 5:
                     raise OSError(errno.EIO, 'I/O error')
                 write(fd, data)
             ckpt._write = failing
             try:
                 save_checkpoint(path, build(seed=1)[0], epoch=2)
             finally:
                 ckpt._write = write
                 assert os.listdir(TMP) == ['last.pt'], os.listdir(TMP)
                 assert open(path, 'rb').read() == saved
             ''', 'I/O error'),
        Case(6, 'disk history in use has no name in its folder', CORRECT, '''
             h = History(1000, 8, storage='disk', directory=TMP)
             h.push(torch.ones(1000, 8))
             assert os.listdir(TMP) == [], os.listdir(TMP)
             h.close() if hasattr(h, 'close') else None
             assert os.listdir(TMP) == []
             '''),
    ]


# Class 7: distributed stalls #################################################

DISTRIBUTED_WORKER = r'''
import json, os, signal, sys, time
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch_autoscale import distributed as tad
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import clustered_graph

fault, faulty, timeout, out_dir = (sys.argv[1], int(sys.argv[2]),
                                   float(sys.argv[3]), sys.argv[4])
rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
torch.set_num_threads(1)
torch.sparse.check_sparse_tensor_invariants.disable()
data, ptr = clustered_graph(200, 4 * world_size, adj='gcn_norm',
                            num_classes=3, avg_degree=5)
# Meet before joining, so that a short timeout does not catch a rank still
# importing on a busy machine.
open(os.path.join(out_dir, f'ready_{rank}'), 'w').close()
deadline = time.monotonic() + 120
while not all(os.path.exists(os.path.join(out_dir, f'ready_{r}'))
              for r in range(world_size)):
    if time.monotonic() > deadline:
        sys.exit('the other ranks did not start')
    time.sleep(0.05)
tad.init_process_group('gloo', timeout=timeout)
loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=1, seed=0)
torch.manual_seed(0)
model = GCN(data.num_nodes, data.num_features, 8, 3, num_layers=2,
            history_factory=tad.history_factory('sharded', loader.assignment))
result = dict(rank=rank, error=None)
start = None
try:
    with tad.collective('the training step'):
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.Adam(ddp.parameters(), lr=0.01)
        for step in range(1000):
            loader.set_epoch(step)
            for batch in loader:
                if step == 3 and start is None:
                    start = time.monotonic()
                    if rank == faulty:
                        os.kill(os.getpid(), signal.SIGSTOP if fault ==
                                'stop' else signal.SIGKILL)
                optimizer.zero_grad()
                out = ddp(batch.data.x, batch.data.adj_t, batch)
                loss = F.cross_entropy(out, batch.data.y[:batch.batch_size])
                loss.backward()
                optimizer.step()
except Exception as e:
    result.update(error=type(e).__name__, message=str(e),
                  error_rank=getattr(e, 'rank', 'absent'),
                  seconds=time.monotonic() - (start or 0.0))
with open(os.path.join(out_dir, f'{rank}.part'), 'w') as f:
    json.dump(result, f)
os.replace(os.path.join(out_dir, f'{rank}.part'),
           os.path.join(out_dir, f'{rank}.json'))
sys.exit(1 if result['error'] else 0)
'''

DISTRIBUTED_SETUP = '''
import json, os, signal, subprocess, sys, time
import torch_autoscale.errors as errors
from torch_autoscale.distributed.context import _free_port

def stall(fault, faulty, world_size=2, timeout=4.0):
    r"""Runs the worker in world_size gloo processes, of which faulty stops
    (SIGSTOP) or dies (SIGKILL) at the fourth step; re-raises, by class,
    the error the other rank ended with, after checking it names faulty
    within the bound."""
    worker = os.path.join(TMP, 'worker.py')
    with open(worker, 'w') as f:
        f.write(WORKER)
    env = dict(os.environ, MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(_free_port()), WORLD_SIZE=str(world_size),
               LOCAL_WORLD_SIZE=str(world_size), OMP_NUM_THREADS='1')
    procs = {}
    try:
        for rank in range(world_size):
            procs[rank] = subprocess.Popen(
                [sys.executable, worker, fault, str(faulty), str(timeout),
                 TMP], env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        other = next(r for r in procs if r != faulty)
        _, stderr = procs[other].communicate(timeout=150 + 4 * timeout)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()  # SIGKILL also ends a stopped process.
            proc.wait(timeout=30)
    path = os.path.join(TMP, f'{other}.json')
    assert os.path.exists(path), stderr[-2000:]
    report = json.load(open(path))
    assert report['error'] is not None, report
    assert procs[other].returncode == 1, procs[other].returncode
    cls = getattr(errors, report['error'], None) or RuntimeError
    message = (f"{report['message']} [rank {other}: error after "
               f"{report['seconds']:.1f} s, rank attribute "
               f"{report['error_rank']}]")
    if report['error'] == 'DistributedTimeoutError':
        assert report['error_rank'] == faulty, report
        assert report['seconds'] < 3 * timeout + 10, report
        raise errors.DistributedTimeoutError(message, report['error_rank'])
    raise type(report['error'], (Exception, ), {})(message)
'''


def distributed_cases() -> List[Case]:
    return [
        Case(7, 'SIGSTOP rank 1 of 2 gloo ranks mid-training (timeout 4 s)',
             'DistributedTimeoutError', "stall('stop', 1)",
             'rank 1 stopped answering', timeout=200),
        Case(7, 'SIGKILL rank 1 of 2 gloo ranks mid-training (timeout 4 s)',
             'DistributedTimeoutError', "stall('kill', 1)",
             'rank 1 stopped answering', timeout=200),
    ]


# Class 8: silent garbage #####################################################

GARBAGE_SETUP = '''
import torch
from torch_autoscale.errors import HistoryOverflowError, NonFiniteError
from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t
from torch_autoscale.utils.synthetic import homophilous_sbm

def sbm(num_nodes=400):
    data = homophilous_sbm(num_nodes=num_nodes, num_classes=4,
                           num_features=16, seed=0)
    data.adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    cluster = metis(data.edge_index, data.num_nodes, 8)
    perm, ptr = sort_by_cluster(cluster, 8)
    del data.edge_index
    return permute(data, perm), ptr

def nan_features(Loader):
    data, ptr = sbm()
    data.x[37, 3] = float('nan')
    data.x[250, 0] = float('inf')
    try:
        Loader(data, ptr, batch_size=2)
    except NonFiniteError as e:
        assert e.rows == [37, 250], e.rows
        raise
'''


def garbage_cases() -> List[Case]:
    return [
        Case(8, 'NaN and inf features at SubgraphLoader construction',
             'NonFiniteError', 'nan_features(SubgraphLoader)',
             re.escape("'data.x'") + r'.*\[37, 250\]', quick=True),
        Case(8, 'NaN and inf features at EvalSubgraphLoader construction',
             'NonFiniteError', 'nan_features(EvalSubgraphLoader)',
             re.escape("'data.x'") + r'.*\[37, 250\]'),
        Case(8, 'infinite edge weight at SubgraphLoader construction',
             'NonFiniteError', '''
             data, ptr = sbm()
             data.adj_t.values()[5] = float('inf')
             SubgraphLoader(data, ptr, batch_size=2)
             ''', 'edge weights'),
        Case(8, 'NaN weight: NaN reaching a history push', 'NonFiniteError',
             '''
             data, ptr = sbm()
             model = GCN(data.num_nodes, 16, 32, 4, num_layers=3)
             loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=False)
             with torch.no_grad():
                 model.convs[0].lin.weight[0, 0] = float('nan')
             batch = next(iter(loader))
             try:
                 model(batch.data.x, batch.data.adj_t, batch)
             finally:
                 assert all(torch.isfinite(h.emb).all()
                            for h in model.histories)
             ''', 'NaN or infinite'),
        Case(8, 'activations beyond 65504 into float16 histories',
             'HistoryOverflowError', '''
             data, ptr = sbm()
             data.x = data.x * 1e6
             model = GCN(data.num_nodes, 16, 32, 4, num_layers=2,
                         history_dtype=torch.float16)
             loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=False)
             batch = next(iter(loader))
             try:
                 model(batch.data.x, batch.data.adj_t, batch)
             finally:
                 assert not model.histories[0].emb.isinf().any()
             ''', '65504'),
        Case(8, 'mini_inference with a loader missing a batch', 'ValueError',
             '''
             data, ptr = sbm()
             model = GCN(data.num_nodes, 16, 32, 4, num_layers=2)
             partial = list(EvalSubgraphLoader(data, ptr, batch_size=2))[:-1]
             model.mini_inference(partial, progress=False)
             ''', 'node.*in no mini-batch'),
        Case(8, 'mini_inference with a batch twice', 'ValueError', '''
             data, ptr = sbm()
             model = GCN(data.num_nodes, 16, 32, 4, num_layers=2)
             loader = list(EvalSubgraphLoader(data, ptr, batch_size=2))
             model.mini_inference(loader + loader[:1], progress=False)
             ''', 'more than once|more than one'),
        Case(8, 'mini_inference over a chosen part (nodes=)', CORRECT, '''
             data, ptr = sbm()
             model = GCN(data.num_nodes, 16, 32, 4, num_layers=2)
             loader = EvalSubgraphLoader(data, ptr, batch_size=2)
             full = model.mini_inference(loader, progress=False)
             nodes = torch.arange(int(ptr[-3]))
             out = model.mini_inference(list(loader)[:-1], progress=False,
                                        nodes=nodes)
             assert torch.allclose(out[nodes], full[nodes], atol=1e-5)
             assert (out[int(ptr[-3]):] == 0).all()
             '''),
    ]


def groups() -> List[Group]:
    disk = disk_cases()
    return [
        Group('native', NATIVE_SETUP, native_cases('native')),
        Group('fallback', NATIVE_SETUP, native_cases('fallback'),
              env={'TORCH_AUTOSCALE_DISABLE_NATIVE': '1'}),
        Group('partition', PARTITION_SETUP, partition_cases()),
        Group('history', HISTORY_SETUP, history_cases()),
        Group('fsize', CHECKPOINT_HELPERS, disk['fsize'], fsize=1 << 20),
        Group('tmpfs', CHECKPOINT_HELPERS, disk['tmpfs']),
        Group('checkpoint', CHECKPOINT_SETUP, checkpoint_cases()),
        Group('leftover', LEFTOVER_SETUP, leftover_cases()),
        Group('distributed',
              f'WORKER = {DISTRIBUTED_WORKER!r}\n' + DISTRIBUTED_SETUP,
              distributed_cases()),
        Group('garbage', GARBAGE_SETUP, garbage_cases()),
    ]


# The child interpreter #######################################################


def source(filename: str) -> str:
    r"""Where an error was raised, without this machine's folders: relative
    to the repository, or to ``site-packages`` for installed packages."""
    marker = 'site-packages' + os.sep
    if marker in filename:
        return filename.split(marker, 1)[1]
    if filename.startswith(ROOT + os.sep):
        return osp.relpath(filename, ROOT)
    return filename


def _emit(kind: str, **fields: Any) -> None:
    sys.stdout.write('\n' + MARK + json.dumps(dict(kind=kind, **fields)) +
                     '\n')
    sys.stdout.flush()


def child(spec_path: str) -> None:
    r"""Runs the cases of one spec file (the setup, then every case in a
    namespace of its own) and reports each one's start and end on
    stdout."""
    with open(spec_path) as f:
        spec = json.load(f)
    namespace: Dict[str, Any] = {'__name__': '__reliability__'}
    try:
        exec(compile(spec['setup'], '<setup>', 'exec'), namespace)
    except BaseException as e:  # noqa: B902
        _emit('setup_error', error=type(e).__name__, message=str(e))
        return
    for case in spec['cases']:
        tmp = tempfile.mkdtemp(prefix='reliability-')
        # The setup's functions see these too (their globals).
        namespace.update(TMP=tmp, SMALL=case.get('small'))
        scope = dict(namespace)
        _emit('start', name=case['name'], at=time.time())
        start = time.perf_counter()
        try:
            exec(compile(case['code'], f"<{case['name']}>", 'exec'), scope)
        except BaseException as e:  # noqa: B902 (KeyboardInterrupt too)
            frame = traceback.extract_tb(e.__traceback__)[-1]
            error = dict(error=type(e).__name__, message=str(e)[:2000],
                         mro=[c.__name__ for c in type(e).__mro__],
                         where=f'{source(frame.filename)}:{frame.lineno}')
        else:
            error = dict(error=None, message='', mro=[], where='')
        seconds = time.perf_counter() - start
        shutil.rmtree(tmp, ignore_errors=True)
        _emit('done', name=case['name'], seconds=seconds, **error)


# The parent ##################################################################


def _mount_tmpfs(path: str, size: str = '4m') -> bool:
    os.makedirs(path, exist_ok=True)
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}',
                           'tmpfs', path], capture_output=True, text=True)
    if proc.returncode != 0:
        log.warning('cannot mount a tmpfs at %s (%s)', path,
                    proc.stderr.strip() or proc.returncode)
    return proc.returncode == 0


def _umount(path: str) -> None:
    subprocess.run(['umount', '-l', path], capture_output=True)


def _limit_file_size(nbytes: int):
    def preexec() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return preexec


def _reader(stream, out: 'queue.Queue[Optional[str]]') -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def verdict(case: Case, error: Optional[str], message: str) -> str:
    r"""What a case observed, as the table shows it."""
    if error is None:
        return CORRECT
    if error == case.expected and case.match and \
            not re.search(case.match, message, re.DOTALL):
        return f'{error} (message does not match)'
    return error


def run_once(group: Group, cases: List[Case], smalls: Dict[str, str],
             workdir: str) -> List[Dict[str, Any]]:
    r"""Runs :obj:`cases` in one child until it ends; returns a record for
    every case that started (the last one possibly killed by a signal or
    hung)."""
    spec = dict(setup=dedent(group.setup),
                cases=[dict(name=c.name, code=dedent(c.code),
                            small=smalls.get(c.name)) for c in cases])
    spec_path = osp.join(workdir, f'{group.name}.json')
    with open(spec_path, 'w') as f:
        json.dump(spec, f)
    env = dict(os.environ, **group.env)
    env.setdefault('OMP_NUM_THREADS', '1')
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p])
    stderr = tempfile.TemporaryFile(mode='w+')
    begin = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, osp.abspath(__file__), '--child', spec_path],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        cwd=ROOT, start_new_session=True,
        preexec_fn=None if group.fsize is None else _limit_file_size(
            group.fsize))
    lines: 'queue.Queue[Optional[str]]' = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines),
                     daemon=True).start()
    by_name = {c.name: c for c in cases}
    records: List[Dict[str, Any]] = []
    current, started, hung = None, None, False
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            hung = True
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if line is None:
            break
        if not line.startswith(MARK):
            continue
        msg = json.loads(line[len(MARK):])
        if msg['kind'] == 'setup_error':
            for case in cases:
                records.append(dict(
                    name=case.name, observed='setup failed: ' + msg['error'],
                    error=msg['error'], message=msg['message'], seconds=0.0))
            break
        if msg['kind'] == 'start':
            current, started = msg['name'], time.monotonic()
            deadline = started + by_name[current].timeout
            log.info('%s: %s', group.name, current)
        elif msg['kind'] == 'done':
            case = by_name[msg['name']]
            records.append(dict(
                name=case.name, error=msg['error'], message=msg['message'],
                mro=msg['mro'], where=msg['where'],
                seconds=msg['seconds'],
                observed=verdict(case, msg['error'], msg['message'])))
            current = None
            deadline = time.monotonic() + START_TIMEOUT
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    try:  # Grandchildren (killed-process and distributed cases).
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stderr.seek(0)
    tail = stderr.read()[-3000:]
    stderr.close()
    if current is not None:  # Ended by a signal, a hang or an exit.
        if hung:
            observed = 'hang'
        elif proc.returncode is not None and proc.returncode < 0:
            observed = f'signal {signal.Signals(-proc.returncode).name}'
        else:
            observed = f'exit {proc.returncode}'
        records.append(dict(name=current, error=None, message='',
                            seconds=time.monotonic() - started,
                            observed=observed, stderr=tail))
    elif len(records) < len(cases) and not records:
        # The child died before its first case (start-up).
        log.error('%s: the child ended before its first case (rc %s):\n%s',
                  group.name, proc.returncode, tail)
    log.debug('%s: child ran %.1f s', group.name, time.monotonic() - begin)
    return records


def run_group(group: Group, workdir: str) -> List[Dict[str, Any]]:
    r"""Runs every case of :obj:`group`, in as many children as signals and
    hangs take: a case that ends its child is recorded, and the rest go on
    in a fresh one."""
    smalls: Dict[str, str] = {}
    cases = []
    for case in group.cases:
        if case.tmpfs:
            path = osp.join(workdir, f'small{len(smalls)}')
            if not _mount_tmpfs(path):
                log.warning('skipping %r: no tmpfs', case.name)
                continue
            smalls[case.name] = path
        cases.append(case)
    out: List[Dict[str, Any]] = []
    try:
        remaining = list(cases)
        while remaining:
            records = run_once(group, remaining, smalls, workdir)
            if not records:
                for case in remaining:
                    out.append(dict(name=case.name, observed='no report',
                                    error=None, message='', seconds=0.0))
                break
            out += records
            done = {r['name'] for r in records}
            remaining = [c for c in remaining if c.name not in done]
    finally:
        for path in smalls.values():
            _umount(path)
    by_name = {c.name: c for c in cases}
    for record in out:
        case = by_name[record['name']]
        record.update(cls=case.cls, class_name=CLASSES[case.cls],
                      case=case.name, expected=case.expected,
                      group=group.name, match=case.match,
                      ok=record['observed'] == case.expected)
        del record['name']
    return out


def run_cases(quick: bool, only: Optional[str]) -> List[Dict[str, Any]]:
    workdir = tempfile.mkdtemp(prefix='reliability-run-')
    results = []
    try:
        for group in groups():
            cases = [c for c in group.cases if (c.quick or not quick) and
                     (only is None or re.search(only, c.name))]
            if not cases:
                continue
            group.cases = cases
            start = time.monotonic()
            records = run_group(group, workdir)
            results += records
            bad = [r for r in records if not r['ok']]
            log.info('%s: %d cases in %.1f s, %d not ok', group.name,
                     len(records), time.monotonic() - start, len(bad))
            for r in bad:
                log.warning('NOT OK: %s: expected %s, observed %s (%s)',
                            r['case'], r['expected'], r['observed'],
                            r['message'][:300])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# Finite checks on GAS epochs #################################################


def measure_epochs(num_nodes: int, epochs: int, warmup: int, threads: int,
                   num_layers: int, float16: bool = True,
                   full: bool = True) -> List[Dict[str, Any]]:
    r"""Trains GAS models (float32 and float16 histories) with the finite
    checks on and off, and a full-batch model, one epoch each in turn (the
    order rotating); returns one record per epoch."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    from torch_autoscale.errors import set_finite_checks
    from torch_autoscale.loader import SubgraphLoader
    from torch_autoscale.nn.models import GCN
    from torch_autoscale.partition import partition, permute, sort_by_cluster
    from torch_autoscale.utils import csr_adj_t
    from torch_autoscale.utils.synthetic import homophilous_sbm

    torch.set_num_threads(threads)
    torch.sparse.check_sparse_tensor_invariants.disable()
    # The data and hyperparameters of examples/train_gcn.py (synthetic).
    num_parts, batch_size, hidden = 40, 10, 64
    data = homophilous_sbm(num_nodes=num_nodes, num_classes=8, avg_degree=8,
                           homophily=0.5, seed=0)
    num_classes = int(data.y.max()) + 1
    adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    data.adj_t, _ = gcn_norm(adj_t, add_self_loops=True)
    cluster = partition(data.edge_index, num_parts, method='metis',
                        num_nodes=data.num_nodes)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    del data.edge_index
    data = permute(data, perm)

    def loader_seconds(checks: bool) -> float:
        set_finite_checks(checks)
        start = time.perf_counter()
        SubgraphLoader(data, ptr, batch_size=batch_size, shuffle=True)
        return time.perf_counter() - start

    records: List[Dict[str, Any]] = []
    for rep in range(5):  # One-off cost: the loader checks data.x.
        for checks in (True, False):
            records.append(dict(kind='loader', checks=checks, round=rep,
                                seconds=loader_seconds(checks)))
    set_finite_checks(True)

    def make(dtype):
        torch.manual_seed(0)
        model = GCN(data.num_nodes, data.num_features, hidden, num_classes,
                    num_layers=num_layers, dropout=0.5, drop_input=True,
                    history_dtype=dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        return model, optimizer

    loader = SubgraphLoader(data, ptr, batch_size=batch_size, shuffle=True)
    variants = {'float32': make(None)}
    if float16:
        variants['float16'] = make(torch.float16)

    def gas_epoch(model, optimizer) -> None:
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            bs = batch.batch_size
            mask = batch.data.train_mask[:bs]
            if not bool(mask.any()):
                continue
            loss = F.cross_entropy(out[:bs][mask], batch.data.y[:bs][mask])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

    full_model = make(None) if full else None

    def full_epoch(model, optimizer) -> None:
        model.train()
        optimizer.zero_grad()
        out = model(data.x, data.adj_t)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    runs = [(f'GAS {name}', name, checks) for name in variants
            for checks in (True, False)]
    if full:
        runs.append(('full-batch', None, None))
    for rnd in range(warmup + epochs):
        shift = rnd % len(runs)
        for mode, variant, checks in runs[shift:] + runs[:shift]:
            if variant is None:
                set_finite_checks(True)
                start = time.perf_counter()
                full_epoch(*full_model)
            else:
                set_finite_checks(checks)
                start = time.perf_counter()
                gas_epoch(*variants[variant])
            seconds = time.perf_counter() - start
            records.append(dict(kind='epoch', mode=mode, checks=checks,
                                round=rnd, warmup=rnd < warmup,
                                seconds=seconds))
        log.info('round %d/%d', rnd + 1, warmup + epochs)
    set_finite_checks(True)
    for name, (model, _) in variants.items():  # Training stayed finite.
        for history in model.histories:
            assert bool(torch.isfinite(history.emb.float()).all()), name
    return records


def epoch_summary(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""Median seconds per mode (warm-up excluded) and the ratios of checks
    on to off."""
    def median(mode, checks):
        values = [r['seconds'] for r in records if r['kind'] == 'epoch'
                  and not r['warmup'] and r['mode'] == mode
                  and r['checks'] == checks]
        return statistics.median(values) if values else None, len(values)

    modes = []
    for r in records:
        if r['kind'] == 'epoch' and r['mode'] not in modes:
            modes.append(r['mode'])
    out = []
    for mode in modes:
        if mode == 'full-batch':
            sec, n = median(mode, None)
            out.append(dict(mode=mode, on=sec, off=None, ratio=None,
                            epochs=n))
            continue
        on, n = median(mode, True)
        off, _ = median(mode, False)
        out.append(dict(mode=mode, on=on, off=off, ratio=on / off,
                        epochs=n))
    loader = {c: statistics.median(r['seconds'] for r in records
                                   if r['kind'] == 'loader'
                                   and r['checks'] == c)
              for c in (True, False)
              if any(r['kind'] == 'loader' and r['checks'] == c
                     for r in records)}
    if len(loader) == 2:
        out.append(dict(mode='SubgraphLoader construction (once)',
                        on=loader[True], off=loader[False],
                        ratio=loader[True] / loader[False], epochs=None))
    return out


# Output ######################################################################


def table(cases: List[Dict[str, Any]], summary: List[Dict[str, Any]],
          info: Dict[str, Any]) -> List[str]:
    r"""The body of the table: every case, and what the checks cost."""
    ok = sum(r['ok'] for r in cases)
    lines = [
        f"{info['when']}, commit `{info['commit']}`, Python "
        f"{info['python']}, PyTorch {info['torch']}, {info['machine']}.", '',
        '## Fault cases', '',
        'Every case runs in a child interpreter (the cases of a class share '
        'one) under a timeout; a signal or a hang is charged to the case '
        'that was running and the rest go on in a fresh child. '
        '`expected`: the named error the library must raise, or `correct '
        'result` (the case checks the result itself: balanced parts, '
        'files left, tables unchanged, ...). Where an error is expected, '
        'the case also checks what it left behind (model, optimizer and '
        'history unchanged, old checkpoint intact, no files left) and its '
        'message. Disk-full cases run on a 4 MiB tmpfs mounted per case '
        'and under a 1 MiB `RLIMIT_FSIZE`; class 1 runs every case on the '
        'native kernels and on the pure-PyTorch fallback '
        '(`TORCH_AUTOSCALE_DISABLE_NATIVE=1`). `seconds`: the case alone, '
        'without the interpreter\'s start-up.', '',
        f"**{len(cases)} cases, {ok} ok"
        + ('' if ok == len(cases) else f", {len(cases) - ok} NOT ok")
        + '.**', '',
        '| class | case | expected | observed | ok | seconds |',
        '|---|---|---|---|---|---|',
    ]
    for r in cases:
        case = r['case'].replace('|', '\\|')
        lines.append(
            f"| {r['cls']} {r['class_name']} | {case} | {r['expected']} | "
            f"{r['observed']} | {'yes' if r['ok'] else '**no**'} | "
            f"{r['seconds']:.2f} |")
    if summary:
        e = info['epochs']
        lines += [
            '', '## What the finite checks cost', '',
            f"GCN ({e['num_layers']} layers, hidden 64, dropout 0.5) with "
            f"GAS on a homophilous SBM graph of {e['num_nodes']:,} nodes "
            '(average degree 8, 8 classes, 40 METIS clusters, 10 per '
            'mini-batch, as `examples/train_gcn.py`), histories in host '
            'memory, float32 and float16. One process trains every mode an '
            'epoch at a time in turn, the order rotating every round: GAS '
            'with `set_finite_checks(True)` and `set_finite_checks(False)` '
            '(one model per history dtype, trained in both), and '
            f"full-batch epochs for reference; {e['warmup']} warm-up rounds, "
            f"then the median of {e['epochs']} epochs per mode, "
            f"{e['threads']} thread(s). The checks are one "
            '`isfinite().all()` per history push (and a scan of the '
            'features when a loader is built).', '',
            '| mode | checks on (s) | checks off (s) | on / off | epochs |',
            '|---|---|---|---|---|']
        for s in summary:
            off = '' if s['off'] is None else f"{s['off']:.4f}"
            ratio = '' if s['ratio'] is None else f"{s['ratio']:.3f}"
            epochs = '' if s['epochs'] is None else str(s['epochs'])
            lines.append(f"| {s['mode']} | {s['on']:.4f} | {off} | "
                         f'{ratio} | {epochs} |')
    return lines


def write_table(jsonl: str, path: str) -> str:
    r"""The table of the records in :obj:`jsonl`."""
    records = bench_util.read_jsonl(jsonl)
    info = next(r for r in records if r['kind'] == 'run')
    cases = [{k: v for k, v in r.items() if k != 'kind'} for r in records
             if r['kind'] == 'case']
    summary = [{k: v for k, v in r.items() if k != 'kind'} for r in records
               if r['kind'] == 'summary']
    return bench_util.write_markdown(
        path, 'Reliability: fault cases and the cost of the finite checks',
        bench_util.commands(records), table(cases, summary, info))


def _info(args) -> Dict[str, Any]:
    import torch
    commit = bench_util.git_commit()[:7]
    if bench_util.git_dirty():  # Measured on the working tree.
        commit += ' + uncommitted library changes'
    return dict(when=time.strftime('%Y-%m-%d'), commit=commit,
                python=platform.python_version(), torch=torch.__version__,
                machine=f'{os.cpu_count()} CPUs ({platform.machine()})',
                epochs=dict(num_nodes=args.num_nodes, epochs=args.epochs,
                            warmup=args.warmup, threads=args.threads,
                            num_layers=args.num_layers))


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a few cases and a small, short epoch run')
    parser.add_argument('--cases', default=None,
                        help='only the cases whose name matches this '
                        'regular expression')
    parser.add_argument('--epochs', type=int, default=None,
                        help='timed epochs per mode (default 30, quick 3; '
                        '0: no epoch measurement)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='warm-up rounds (default 5, quick 1)')
    parser.add_argument('--num-nodes', type=int, default=None,
                        help='nodes of the graph (default 20000, quick '
                        '2000)')
    parser.add_argument('--num-layers', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--no-cases', action='store_true',
                        help='only the epoch measurement')
    parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
    bench_util.add_output_options(parser, 'reliability', skip_done=False)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return {}
    jsonl = bench_util.jsonl_path(args.out)
    if args.table_only:
        text = write_table(jsonl, args.out)
        print(text)
        return dict(text=text)
    if args.epochs is None:
        args.epochs = 3 if args.quick else 30
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.num_nodes is None:
        args.num_nodes = 2000 if args.quick else 20_000
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(name)s %(message)s')

    cases = [] if args.no_cases else run_cases(args.quick, args.cases)
    records: List[Dict[str, Any]] = []
    if args.epochs > 0:
        log.info('epochs: %d nodes, %d warm-up rounds, %d timed',
                 args.num_nodes, args.warmup, args.epochs)
        records = measure_epochs(args.num_nodes, args.epochs, args.warmup,
                                 args.threads, args.num_layers)
    summary = epoch_summary(records) if records else []

    # The whole run is one measurement: its records replace the file's.
    bench_util.write_jsonl(jsonl, [
        dict(kind='run', command=bench_util.command_line(__file__, argv),
             **_info(args)),
        *(dict(kind='case', **r) for r in cases), *records,
        *(dict(kind='summary', **s) for s in summary)])
    text = write_table(jsonl, args.out)
    print(text)
    return dict(cases=cases, summary=summary, records=records, text=text)


if __name__ == '__main__':
    main()
