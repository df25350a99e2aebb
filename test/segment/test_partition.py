import importlib
import logging
import math
import os

import pytest
import torch
from torch_geometric.data import Data

import torch_autoscale.segment.partition as partition
from torch_autoscale.segment import (
    SEGMENT_METHODS,
    SegmentedDataset,
    segment_graph,
)


def communities(num_communities: int = 8, size: int = 125,
                seed: int = 0) -> torch.Tensor:
    r"""Dense communities joined by a few edges, with shuffled node ids."""
    gen = torch.Generator().manual_seed(seed)
    num_nodes = num_communities * size
    # 8 random neighbours inside the own community per node, plus 20
    # edges between random nodes of the whole graph:
    src = torch.arange(num_nodes).repeat_interleave(8)
    dst = (src // size) * size + torch.randint(size, (src.numel(), ),
                                               generator=gen)
    noise = torch.randint(num_nodes, (2, 20), generator=gen)
    edge_index = torch.cat([torch.stack([src, dst]), noise], dim=1)
    shuffle = torch.randperm(num_nodes, generator=gen)
    return shuffle[edge_index]


def edge_cut(edge_index, perm, ptr):
    segment = torch.empty_like(perm)
    segment[perm] = torch.repeat_interleave(torch.arange(ptr.numel() - 1),
                                            ptr.diff())
    return int((segment[edge_index[0]] != segment[edge_index[1]]).sum())


def check_segments(perm, ptr, num_nodes, max_segment_size):
    assert perm.dtype == torch.long and ptr.dtype == torch.long
    assert torch.equal(perm.sort().values, torch.arange(num_nodes))
    assert int(ptr[0]) == 0 and int(ptr[-1]) == num_nodes
    size = ptr.diff()
    assert bool((size >= 1).all())
    assert int(size.max()) <= max_segment_size
    assert size.numel() >= math.ceil(num_nodes / max_segment_size)


@pytest.mark.parametrize('method', SEGMENT_METHODS)
def test_segment_graph(method):
    edge_index = torch.randint(1000, (2, 5000))
    perm, ptr = segment_graph(edge_index, 1000, 128, method=method)
    check_segments(perm, ptr, 1000, 128)
    if method != 'metis':  # Exactly the minimum number of segments.
        assert ptr.numel() - 1 == 8

    # Nodes keep their relative order inside a segment:
    for j in range(ptr.numel() - 1):
        part = perm[ptr[j]:ptr[j + 1]]
        assert bool((part.diff() > 0).all())

    # A graph that fits one segment:
    perm, ptr = segment_graph(edge_index[:, :10] % 50, 50, 128, method)
    assert torch.equal(perm, torch.arange(50))
    assert ptr.tolist() == [0, 50]

    perm, ptr = segment_graph(edge_index, 1000, 1, method)
    check_segments(perm, ptr, 1000, 1)
    assert ptr.numel() == 1001


def test_contiguous():
    perm, ptr = segment_graph(torch.empty(2, 0, dtype=torch.long), 300, 128,
                              'contiguous')
    assert torch.equal(perm, torch.arange(300))
    assert ptr.tolist() == [0, 128, 256, 300]


def test_random_is_balanced_and_deterministic():
    edge_index = torch.empty(2, 0, dtype=torch.long)
    perm, ptr = segment_graph(edge_index, 300, 128, 'random', seed=3)
    assert ptr.tolist() == [0, 100, 200, 300]
    assert not torch.equal(perm, torch.arange(300))
    perm2, ptr2 = segment_graph(edge_index, 300, 128, 'random', seed=3)
    assert torch.equal(perm, perm2) and torch.equal(ptr, ptr2)
    perm3, _ = segment_graph(edge_index, 300, 128, 'random', seed=4)
    assert not torch.equal(perm, perm3)


def test_metis_cuts_fewer_edges():
    edge_index = communities()
    cut = {}
    for method in SEGMENT_METHODS:
        perm, ptr = segment_graph(edge_index, 1000, 128, method)
        check_segments(perm, ptr, 1000, 128)
        cut[method] = edge_cut(edge_index, perm, ptr)
    # Random segments cut about 7/8 of the 8000 edges, METIS few:
    assert cut['random'] > 5000
    assert cut['contiguous'] > 5000
    assert cut['metis'] < 0.1 * cut['random']


def test_metis_splits_oversized_parts(monkeypatch):
    def uneven_metis(edge_index, num_nodes, num_parts, verbose=True):
        # Part 0 is far too large, part 2 is empty:
        cluster = torch.full((num_nodes, ), 1, dtype=torch.long)
        cluster[:num_nodes // 2 + 5] = 0
        return cluster

    # The entry point `torch_autoscale.partition.partition` calls `metis`:
    entry = importlib.import_module('torch_autoscale.partition.partition')
    monkeypatch.setattr(entry, 'metis', uneven_metis)
    perm, ptr = segment_graph(torch.empty(2, 0, dtype=torch.long), 300, 100)
    check_segments(perm, ptr, 300, 100)
    assert ptr.diff().tolist() == [78, 77, 73, 72]
    assert torch.equal(perm, torch.arange(300))


def test_segment_graph_errors():
    edge_index = torch.randint(100, (2, 300))
    for size in [0, -3, 1.5, '8', None, True]:
        with pytest.raises(ValueError, match="'max_segment_size'"):
            segment_graph(edge_index, 100, size)
    with pytest.raises(ValueError,
                       match="'metis', 'lpmetis', 'contiguous', 'random'"):
        segment_graph(edge_index, 100, 10, method='louvain')
    with pytest.raises(ValueError, match="'num_nodes' must be at least 1"):
        segment_graph(edge_index, 0, 10)
    with pytest.raises(ValueError, match="'num_nodes' must be an integer"):
        segment_graph(edge_index, 10.0, 10)
    with pytest.raises(ValueError, match="'seed'"):
        segment_graph(edge_index, 100, 10, 'random', seed=0.5)
    with pytest.raises(ValueError, match="'edge_index'"):  # From METIS.
        segment_graph(edge_index, 50, 10)


def make_graphs(num_graphs=6, seed=0, with_x=True):
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        num_nodes = int(torch.randint(20, 60, (1, ), generator=gen))
        edge_index = torch.randint(num_nodes, (2, 3 * num_nodes),
                                   generator=gen)
        data = Data(edge_index=edge_index, y=torch.tensor([i % 3]),
                    nid=torch.arange(num_nodes), num_nodes=num_nodes)
        if with_x:
            data.x = torch.randn(num_nodes, 4, generator=gen)
        graphs.append(data)
    return graphs


class ListWithDir(list):
    def __init__(self, graphs, processed_dir):
        super().__init__(graphs)
        self.processed_dir = processed_dir


@pytest.mark.parametrize('method', SEGMENT_METHODS)
def test_segmented_dataset(method):
    graphs = make_graphs()
    dataset = SegmentedDataset(graphs, 16, method=method, progress=False)
    assert len(dataset) == 6
    assert dataset.max_segment_size == 16 and dataset.method == method
    assert dataset.num_segments.dtype == torch.long
    assert dataset.num_segments.size() == (6, )
    assert torch.equal(dataset.y, torch.tensor([0, 1, 2, 0, 1, 2]))

    for i, (data, orig) in enumerate(zip(dataset, graphs)):
        assert dataset[i] is data
        perm = data.nid  # Node ids travel with their nodes.
        check_segments(perm, data.seg_ptr, orig.num_nodes, 16)
        assert int(dataset.num_segments[i]) == data.seg_ptr.numel() - 1
        assert data.num_nodes == orig.num_nodes
        assert torch.equal(data.x, orig.x[perm])
        assert torch.equal(perm[data.edge_index], orig.edge_index)
        assert torch.equal(data.y, orig.y)
        expected, ptr = segment_graph(orig.edge_index, orig.num_nodes, 16,
                                      method)
        assert torch.equal(perm, expected)
        assert torch.equal(data.seg_ptr, ptr)
    assert 'seg_ptr' not in graphs[0]  # The input is left untouched.


def test_segmented_dataset_without_x():
    graphs = make_graphs(with_x=False)
    dataset = SegmentedDataset(graphs, 16, progress=False)
    for data, orig in zip(dataset, graphs):
        assert 'x' not in data
        assert data.num_nodes == orig.num_nodes
        assert int(data.seg_ptr[-1]) == orig.num_nodes

    graphs[2].y = None
    assert SegmentedDataset(graphs, 16, progress=False).y is None


def test_segmented_dataset_cache(tmp_path, monkeypatch, caplog):
    graphs = make_graphs()
    path = str(tmp_path / 'sub' / 'segments.pt')
    first = SegmentedDataset(graphs, 16, cache=path, progress=False)
    assert os.path.isfile(path)

    def fail(*args, **kwargs):
        raise RuntimeError('recomputed')

    monkeypatch.setattr(partition, 'segment_graph', fail)
    second = SegmentedDataset(graphs, 16, cache=path, progress=False)
    for a, b in zip(first, second):
        assert torch.equal(a.seg_ptr, b.seg_ptr)
        assert torch.equal(a.x, b.x)
    assert torch.equal(first.num_segments, second.num_segments)

    # Other settings or other graphs invalidate the cache:
    with caplog.at_level(logging.INFO, logger=partition.__name__):
        with pytest.raises(RuntimeError, match='recomputed'):
            SegmentedDataset(graphs, 8, cache=path, progress=False)
        assert 'recomputing' in caplog.text
        with pytest.raises(RuntimeError, match='recomputed'):
            SegmentedDataset(graphs, 16, method='random', cache=path,
                             progress=False)
        with pytest.raises(RuntimeError, match='recomputed'):
            SegmentedDataset(graphs[:5], 16, cache=path, progress=False)
        with pytest.raises(RuntimeError, match='recomputed'):
            SegmentedDataset(make_graphs(seed=1), 16, cache=path,
                             progress=False)

    # Recomputing overwrites the cache:
    monkeypatch.undo()
    third = SegmentedDataset(graphs, 8, cache=path, progress=False)
    assert int(third[0].seg_ptr.diff().max()) <= 8
    monkeypatch.setattr(partition, 'segment_graph', fail)
    fourth = SegmentedDataset(graphs, 8, cache=path, progress=False)
    assert torch.equal(third.num_segments, fourth.num_segments)
    with pytest.raises(RuntimeError, match='recomputed'):
        SegmentedDataset(graphs, 16, cache=path, progress=False)


def test_segmented_dataset_processed_dir(tmp_path, monkeypatch):
    dataset = ListWithDir(make_graphs(), str(tmp_path))
    SegmentedDataset(dataset, 16, method='random', seed=2, progress=False)
    assert os.listdir(tmp_path) == ['segments_random_16_2.pt']

    def fail(*args, **kwargs):
        raise RuntimeError('recomputed')

    monkeypatch.setattr(partition, 'segment_graph', fail)
    SegmentedDataset(dataset, 16, method='random', seed=2, progress=False)
    with pytest.raises(RuntimeError, match='recomputed'):  # Other seed.
        SegmentedDataset(dataset, 16, method='random', seed=3,
                         progress=False)
    monkeypatch.undo()

    os.remove(tmp_path / 'segments_random_16_2.pt')
    SegmentedDataset(dataset, 16, method='random', seed=2, cache=False,
                     progress=False)
    SegmentedDataset(make_graphs(), 16, progress=False)  # No directory.
    assert os.listdir(tmp_path) == []


def test_segmented_dataset_errors():
    graphs = make_graphs()
    with pytest.raises(ValueError, match="'max_segment_size'"):
        SegmentedDataset(graphs, 0)
    with pytest.raises(ValueError,
                       match="'metis', 'lpmetis', 'contiguous', 'random'"):
        SegmentedDataset(graphs, 16, method='spectral')
    with pytest.raises(ValueError, match="'cache'"):
        SegmentedDataset(graphs, 16, cache=True)
    graphs[1].num_nodes = 0
    graphs[1].edge_index = torch.empty(2, 0, dtype=torch.long)
    del graphs[1].x, graphs[1].nid
    with pytest.raises(ValueError, match="Graph 1 of 'dataset' has no"):
        SegmentedDataset(graphs, 16, progress=False)
