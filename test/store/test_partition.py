import importlib
import os

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.partition import lpmetis
from torch_autoscale.store import (
    GraphStoreWriter,
    buckets,
    lpmetis_store,
    store_from_data,
)

from test.partition.test_lpmetis import assert_coarse_equal, planted

lpmetis_module = importlib.import_module('torch_autoscale.partition.lpmetis')


def random_graph(num_nodes=150, num_edges=600, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(num_nodes, (2, num_edges), generator=gen)
    return Data(edge_index=to_undirected(edge_index, num_nodes=num_nodes),
                num_nodes=num_nodes)


def sbm(num_blocks=6, size=40, p_in=0.15, p_out=0.005, seed=0):
    edge_index, n = planted(num_blocks, size, p_in, p_out, seed)
    return Data(edge_index=edge_index, num_nodes=n)


def with_isolated_nodes():
    data = random_graph(num_nodes=100, num_edges=250, seed=1)
    # 60 more nodes without edges, some ids between the connected ones:
    perm = torch.randperm(160, generator=torch.Generator().manual_seed(2))
    return Data(edge_index=perm[data.edge_index], num_nodes=160)


def weighted():
    data = sbm(seed=3)
    row, col = data.edge_index
    low, high = torch.minimum(row, col), torch.maximum(row, col)
    # Symmetric weights, a function of the undirected edge:
    data.edge_weight = ((low * 31 + high * 7) % 11).float() / 4 + 0.25
    return data


def with_loops_and_duplicates():
    data = random_graph(num_nodes=80, num_edges=300, seed=4)
    loops = torch.arange(0, 80, 7).repeat(2, 1)
    edge_index = torch.cat([data.edge_index, data.edge_index[:, :40],
                            data.edge_index[:, :40].flip(0), loops], dim=1)
    return Data(edge_index=edge_index, num_nodes=80)


GRAPHS = {
    'random': random_graph,
    'sbm': sbm,
    'isolated': with_isolated_nodes,
    'weighted': weighted,
    'loops_and_duplicates': with_loops_and_duplicates,
}


@pytest.mark.parametrize('name', list(GRAPHS))
@pytest.mark.parametrize('num_parts', [2, 5])
def test_store_equals_in_memory(tmp_path, monkeypatch, name, num_parts):
    # Contraction sorts many small ranges of rows on disk:
    monkeypatch.setattr(buckets, 'BUCKET_ENTRIES', 13)
    data = GRAPHS[name]()
    store = store_from_data(data, tmp_path / 'g')
    for seed in (0, 7):
        ref = lpmetis(data.edge_index, data.num_nodes, num_parts,
                      edge_weight=data.get('edge_weight'), seed=seed,
                      verbose=False)
        for chunk_edges in (7, 64, 10**9):
            out = lpmetis_store(store, num_parts, seed=seed,
                                chunk_edges=chunk_edges, progress=False,
                                verbose=False)
            assert torch.equal(out, ref), (seed, chunk_edges)
    # The temporary files are gone:
    assert sorted(os.listdir(tmp_path)) == ['g']


def test_store_equals_in_memory_with_other_arguments(tmp_path):
    data = sbm(seed=5)
    store = store_from_data(data, tmp_path / 'g')
    for kwargs in (dict(rounds=0), dict(rounds=3, iterations=2),
                   dict(p_ratio=0.2, p_b=0.5, refine=0),
                   dict(max_cluster_size=3), dict(p_b=0.0), dict(p_b=1.0),
                   dict(max_coarse_entries=0), dict(max_coarse_entries=40),
                   dict(rounds=0, max_coarse_entries=100)):
        ref = lpmetis(data.edge_index, data.num_nodes, 4, seed=2,
                      verbose=False, **kwargs)
        out = lpmetis_store(store, 4, seed=2, chunk_edges=29,
                            progress=False, verbose=False, **kwargs)
        assert torch.equal(out, ref), kwargs


@pytest.mark.parametrize('kwargs', [dict(max_cluster_size=10),
                                    dict(rounds=0),
                                    dict(max_cluster_size=10,
                                         max_coarse_entries=60)])
def test_store_keeps_the_in_memory_coarse_graph(tmp_path, kwargs):
    data = weighted()
    store = store_from_data(data, tmp_path / 'g')
    ref = lpmetis(data.edge_index, data.num_nodes, 4, seed=1,
                  edge_weight=data.edge_weight, verbose=False,
                  return_coarse=True, **kwargs)
    for num_parts in (4, 1):
        if num_parts == 1:
            ref = lpmetis(data.edge_index, data.num_nodes, 1, seed=1,
                          edge_weight=data.edge_weight, verbose=False,
                          return_coarse=True, **kwargs)
        cluster, coarse = lpmetis_store(store, num_parts, seed=1,
                                        chunk_edges=37, progress=False,
                                        verbose=False, return_coarse=True,
                                        **kwargs)
        assert torch.equal(cluster, ref[0])
        assert_coarse_equal(coarse, ref[1])
    assert sorted(os.listdir(tmp_path)) == ['g']


class LargestTensor(TorchFunctionMode):
    r"""Records the largest tensor any torch call returns, except views of
    memory-mapped files (the store's arrays and those of
    :func:`torch.from_file`)."""
    def __init__(self, exempt):
        super().__init__()
        self.exempt = set(exempt)
        self.largest = 0
        self.paused = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.from_file:
            self.exempt.add(out.untyped_storage().data_ptr())
        elif not self.paused:
            for t in out if isinstance(out, (tuple, list)) else (out, ):
                if isinstance(t, torch.Tensor) and t.numel() > 0 and \
                        t.untyped_storage().data_ptr() not in self.exempt:
                    self.largest = max(self.largest, t.numel())
        return out


def test_memory_bounded_by_nodes_and_chunk(tmp_path, monkeypatch):
    n, chunk_edges, cap = 200, 64, 4
    # Ranges of rows sorted in memory are as large as a block:
    monkeypatch.setattr(buckets, 'BUCKET_ENTRIES', chunk_edges)
    data = random_graph(num_nodes=n, num_edges=4000, seed=6)
    store = store_from_data(data, tmp_path / 'g')
    exempt = [store[name].untyped_storage().data_ptr()
              for name in store.names]
    tracer = LargestTensor(exempt)
    metis_coarse = lpmetis_module.metis_coarse

    def untraced(*args):  # The final coarse graph is loaded on purpose.
        tracer.paused = True
        try:
            return metis_coarse(*args)
        finally:
            tracer.paused = False

    monkeypatch.setattr(lpmetis_module, 'metis_coarse', untraced)
    with tracer:
        out = lpmetis_store(store, 4, seed=0, chunk_edges=chunk_edges,
                            max_cluster_size=cap, progress=False,
                            verbose=False)
    ref = lpmetis(data.edge_index, n, 4, seed=0, max_cluster_size=cap,
                  verbose=False)
    assert torch.equal(out, ref)
    # A row is never split; a coarse row holds a cluster's entries:
    degree = store['rowptr'].diff()
    longest = max(chunk_edges, n + 1, cap * int(degree.max()))
    assert chunk_edges <= tracer.largest <= 4 * longest < store.num_edges


def test_progress_bars(tmp_path, capsys):
    store = store_from_data(sbm(), tmp_path / 'g')
    lpmetis_store(store, 3, seed=0, chunk_edges=50, verbose=False)
    err = capsys.readouterr().err
    for desc in ('scanning the graph', 'LPMetis round 1',
                 'LPMetis refinement'):
        assert desc in err
    lpmetis_store(store, 3, seed=0, chunk_edges=50, progress=False,
                  verbose=False)
    assert 'LPMetis' not in capsys.readouterr().err


def test_single_part_and_default_seed(tmp_path):
    data = random_graph()
    store = store_from_data(data, tmp_path / 'g')
    assert lpmetis_store(store, 1, progress=False).tolist() == [0] * 150
    out = lpmetis_store(store, 3, progress=False)
    assert torch.bincount(out, minlength=3).min() > 0


def write_store(path, rowptr, col, value=None):
    with GraphStoreWriter(path, rowptr.numel() - 1) as writer:
        writer.put('rowptr', rowptr)
        writer.put('col', col)
        if value is not None:
            writer.put('value', value)


def test_bad_input(tmp_path):
    store = store_from_data(random_graph(), tmp_path / 'g')
    with pytest.raises(ValueError, match="'store' must be a GraphStore"):
        lpmetis_store(str(tmp_path / 'g'), 2)
    with pytest.raises(ValueError, match="'chunk_edges'"):
        lpmetis_store(store, 2, chunk_edges=0)
    with pytest.raises(ValueError, match="'num_parts'"):
        lpmetis_store(store, 151)
    with pytest.raises(ValueError, match="'p_b'"):
        lpmetis_store(store, 2, p_b=2.0)
    with pytest.raises(ValueError, match="'workdir'"):
        lpmetis_store(store, 2, workdir=tmp_path / 'missing')
    # A directed store: 0 -> 1 only.
    write_store(tmp_path / 'd', torch.tensor([0, 0, 1, 1]),
                torch.tensor([0]))
    from torch_autoscale.store import GraphStore
    with pytest.raises(PartitionInputError, match='symmetric'):
        lpmetis_store(GraphStore(tmp_path / 'd'), 2, progress=False)
    write_store(tmp_path / 'w', torch.tensor([0, 1, 2, 2]),
                torch.tensor([1, 0]), torch.tensor([1.0, -1.0]))
    with pytest.raises(PartitionInputError, match='negative'):
        lpmetis_store(GraphStore(tmp_path / 'w'), 2, progress=False)
