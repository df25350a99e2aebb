import os.path as osp
import subprocess
import sys

import pytest
import torch

from torch_autoscale import distributed as tad
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import clustered_graph, onlyCUDA

WORKERS = osp.join(osp.dirname(__file__), 'workers.py')


def launch(tmp_path, cases, world_size, mode, backend='gloo'):
    r"""Runs :obj:`cases` of ``workers.py`` in :obj:`world_size`
    processes; returns every case's results per rank."""
    out = tmp_path / f'{mode}_{world_size}_{backend}'
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, WORKERS, ','.join(cases), str(out), str(world_size),
         mode, backend], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        case: [torch.load(out / f'{case}_{r}.pt') for r in range(world_size)]
        for case in cases
    }


@pytest.fixture(scope='module', params=tad.HISTORY_MODES)
def two_processes(request, tmp_path_factory):
    mode = request.param
    return mode, launch(tmp_path_factory.mktemp('dist'),
                        ['exchange', 'inference', 'train'], 2, mode)


@pytest.fixture(scope='module')
def one_process(tmp_path_factory):
    return launch(tmp_path_factory.mktemp('dist'), ['train'], 1,
                  'sharded')['train'][0]


def test_pulls_return_the_rows_one_table_holds(two_processes):
    mode, results = two_processes
    for rank, result in enumerate(results['exchange']):
        assert result['world_size'] == 2
        for dtype in ('torch.float32', 'torch.float16'):
            r = result[dtype]
            assert torch.equal(r['pulled'], r['expected'][r['n_id']])
            assert torch.equal(r['everything'], r['expected'])
        if mode == 'sharded':  # Each process stores half of the rows...
            assert result['local_rows'] < 400
            # ... and may push its own nodes only.
            assert 'does not own' in result['error']
    if mode == 'sharded':
        assert sum(r['local_rows'] for r in results['exchange']) == 400
    else:
        assert not any(r['file_left'] for r in results['exchange'])
        if sys.platform == 'linux':
            assert not any(r['named'] for r in results['exchange'])


def test_distributed_mini_inference_equals_full_batch(two_processes):
    _, results = two_processes
    for result in results['inference']:
        assert torch.allclose(result['distributed'], result['full'],
                              atol=1e-5)
        assert result['full'].abs().sum() > 0


def test_training_loss_falls_and_matches_one_process(two_processes,
                                                     one_process):
    _, results = two_processes
    ranks = results['train']
    # Every process reports the same (all-reduced) losses and accuracy.
    assert ranks[0]['losses'] == ranks[1]['losses']
    assert ranks[0]['acc'] == ranks[1]['acc']
    losses = ranks[0]['losses']
    assert losses[-1] < 0.5 * losses[0]
    # The same clusters per step as one process, split over two: the
    # training curve and the accuracy agree within noise.
    single = one_process
    assert abs(losses[-1] - single['losses'][-1]) < 0.1
    assert abs(ranks[0]['acc'] - single['acc']) < 0.05


@onlyCUDA
@pytest.mark.parametrize('mode', tad.HISTORY_MODES)
def test_nccl_pulls_and_inference(tmp_path, mode):
    # One process per GPU: NCCL refuses two on one device.
    world_size = min(2, torch.cuda.device_count())
    results = launch(tmp_path, ['exchange', 'inference'], world_size, mode,
                     backend='nccl')
    for result in results['exchange']:
        r = result['torch.float32']
        assert torch.equal(r['pulled'].cpu(), r['expected'][r['n_id']])
    for result in results['inference']:
        assert torch.allclose(result['distributed'], result['full'],
                              atol=1e-5)


def test_cluster_assignment_is_balanced():
    ptr = torch.tensor([0, 50, 60, 100, 110, 111, 130, 200, 200, 210])
    assignment = tad.ClusterAssignment(ptr, 3)
    owner = assignment.owner
    assert int(owner[7]) == -1  # The empty cluster.
    counts = [len(assignment.clusters(r)) for r in range(3)]
    assert max(counts) - min(counts) <= 1 and sum(counts) == 8
    nodes = [assignment.num_local_nodes(r) for r in range(3)]
    assert sum(nodes) == 210 and max(nodes) <= 1.5 * min(nodes)
    for r in range(3):  # Local rows follow the global order.
        own = assignment.nodes(r)
        assert torch.equal(assignment.local_index[own],
                           torch.arange(own.numel()))
        assert bool((assignment.node_owner[own] == r).all())
    with pytest.raises(ValueError, match='at least'):
        tad.ClusterAssignment(ptr, 9)
    with pytest.raises(ValueError, match="'world_size'"):
        tad.ClusterAssignment(ptr, 0)


def test_every_cluster_once_per_epoch_same_steps_everywhere():
    data, ptr = clustered_graph(300, 11)
    for batch_size in (1, 2, 3):
        loaders = [
            tad.DistributedSubgraphLoader(data, ptr, batch_size=batch_size,
                                          rank=r, world_size=3)
            for r in range(3)
        ]
        for epoch in range(2):
            seen = []
            for loader in loaders:
                loader.set_epoch(epoch)
                batches = list(loader)
                assert len(batches) == len(loader) == tad.num_steps(
                    loader.assignment, batch_size)
                for batch in batches:
                    assert batch.batch_size > 0
                    seen += batch.n_id[:batch.batch_size].tolist()
            assert sorted(seen) == list(range(300))


def test_shuffling_regroups_clusters_per_epoch():
    data, ptr = clustered_graph(300, 12)
    loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=3,
                                           rank=0, world_size=2, seed=1)

    def groups():
        return [tuple(sorted(b.offset.tolist())) for b in loader]

    loader.set_epoch(0)
    first = groups()
    loader.set_epoch(0)
    assert groups() == first  # Deterministic per epoch...
    loader.set_epoch(1)
    assert groups() != first  # ... and regrouped in the next.


def test_errors():
    data, ptr = clustered_graph(100, 4)
    with pytest.raises(ValueError, match="'batch_size'"):
        tad.DistributedSubgraphLoader(data, ptr, batch_size=0)
    with pytest.raises(ValueError, match="'rank'"):
        tad.DistributedSubgraphLoader(data, ptr, rank=2, world_size=2)
    other = tad.ClusterAssignment(ptr, 3)
    with pytest.raises(ValueError, match="'assignment'"):
        tad.DistributedSubgraphLoader(data, ptr, assignment=other, rank=0,
                                      world_size=2)
    with pytest.raises(ValueError, match="'mode'"):
        tad.history_factory('replicated')
    with pytest.raises(ValueError, match="'assignment'"):
        tad.history_factory('sharded')
    with pytest.raises(ValueError, match="'storage'"):
        tad.history_factory('shared', storage='disk')
    with pytest.raises(RuntimeError, match='init_process_group'):
        tad.SharedHistory(10, 4)
    with pytest.raises(RuntimeError, match='init_process_group'):
        tad.ShardedHistory(other, 4)


def test_history_factory_of_scalable_gnn():
    calls = []

    def factory(layer, num_nodes, channels, dtype):
        calls.append((layer, num_nodes, channels, dtype))
        from torch_autoscale.history import History
        return History(num_nodes, channels, dtype=dtype)

    model = GCN(10, 4, 8, 3, num_layers=3, history_factory=factory,
                history_dtype=torch.float16)
    assert calls == [(0, 10, 8, torch.float16), (1, 10, 8, torch.float16)]
    assert model.histories[1].dtype == torch.float16
    with pytest.raises(ValueError, match="'history_factory' or "
                       "'history_storage'"):
        GCN(10, 4, 8, 3, num_layers=2, history_factory=factory,
            history_storage='disk')
    with pytest.raises(ValueError, match='callable'):
        GCN(10, 4, 8, 3, num_layers=2, history_factory=3)
    with pytest.raises(TypeError, match='must return a History'):
        GCN(10, 4, 8, 3, num_layers=2,
            history_factory=lambda *args: torch.zeros(10, 8))


def test_input_checks_without_a_process_group():
    t = torch.tensor
    # 'ptr' must hold integer offsets, from 0, non-decreasing:
    with pytest.raises(ValueError, match="'ptr' must hold integer"):
        tad.ClusterAssignment(t([0., 5.5, 10.]), 2)
    with pytest.raises(ValueError, match="'ptr' must start at 0"):
        tad.ClusterAssignment(t([1, 5, 10]), 2)
    with pytest.raises(ValueError, match=r"'ptr' must be non-decreasing "
                       r"\(ptr\[2\] = 4"):
        tad.ClusterAssignment(t([0, 5, 4, 10]), 2)
    assignment = tad.ClusterAssignment(t([0, 5, 10]), 2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="'batch_size'"):
            tad.num_steps(assignment, bad)
    with pytest.raises(ValueError, match="'assignment'"):
        tad.num_steps(t([0, 5, 10]), 1)
    # The library's own message, not torch's "Default process group has
    # not been initialized":
    with pytest.raises(RuntimeError, match="'exchange_rows' needs a torch."
                       "distributed process group; call 'torch_autoscale."
                       "distributed.init_process_group"):
        tad.exchange_rows(torch.zeros(5, 2), t([-1]), assignment)
    # Backend names are checked before anything starts:
    for bad in ('mpi2', 'cpu:gloo,cuda:ncl', 3):
        with pytest.raises(ValueError, match="'backend'"):
            tad.init_process_group(backend=bad)


_EXCHANGE_IDS = r'''
import sys
import torch
from torch_autoscale import distributed as tad
tad.init_process_group(backend='gloo')
assignment = tad.ClusterAssignment(torch.tensor([0, 3, 5]), 1)
table = torch.arange(10.).view(5, 2)
out = tad.exchange_rows(table, torch.tensor([4, 0]), assignment)
assert torch.equal(out, table[torch.tensor([4, 0])]), out
for bad, match in ((torch.tensor([-1]), 'node id -1, outside of [0, 5)'),
                   (torch.tensor([2, 5]), 'node id 5, outside of [0, 5)'),
                   (torch.tensor([0.5]), 'integer tensor'),
                   (torch.tensor([[0]]), 'one-dimensional')):
    try:
        tad.exchange_rows(table, bad, assignment)
    except ValueError as e:
        assert "'n_id'" in str(e) and match in str(e), str(e)
    else:
        sys.exit(f'no error for {bad}')
try:
    tad.exchange_rows(table[:4], torch.tensor([0]), assignment)
except ValueError as e:
    assert "'table'" in str(e) and '[5, channels]' in str(e), str(e)
else:
    sys.exit('no error for a short table')
# Gloo's threads must stop before the interpreter does (an abort otherwise):
torch.distributed.destroy_process_group()
'''


def test_exchange_rows_validates_ids():
    # A group of one, in a fresh interpreter (not to leave a group behind):
    proc = subprocess.run([sys.executable, '-c', _EXCHANGE_IDS],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
