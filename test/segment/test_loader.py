import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from torch_autoscale.segment import SegmentedDataset, SegmentLoader


def graphs():
    gen = torch.Generator().manual_seed(0)
    out = []
    for i, n in enumerate([30, 7, 45]):
        edge_index = torch.randint(n, (2, 4 * n), generator=gen)
        out.append(Data(x=torch.randn(n, 3, generator=gen),
                        edge_index=edge_index,
                        edge_attr=torch.randn(edge_index.size(1), 2,
                                              generator=gen),
                        y=torch.tensor([i]), num_nodes=n))
    return out


@pytest.fixture
def dataset():
    return SegmentedDataset(graphs(), max_segment_size=10,
                            method='contiguous', cache=False, progress=False)


def test_segments_are_induced_subgraphs(dataset):
    loader = SegmentLoader(dataset, batch_size=3, num_sampled=None)
    batch = next(iter(loader))
    assert batch.others.graph.numel() == 0
    assert torch.equal(batch.num_segments, torch.tensor([3, 1, 5]))
    assert batch.sampled.data.num_graphs == 9
    for k in range(9):
        g = int(batch.sampled.graph[k])
        j = int(batch.sampled.segment[k])
        data = dataset[g]
        start, end = int(data.seg_ptr[j]), int(data.seg_ptr[j + 1])
        seg = batch.sampled.data.get_example(k)
        assert torch.equal(seg.x, data.x[start:end])
        edge_index, edge_attr = subgraph(
            torch.arange(start, end), data.edge_index, data.edge_attr,
            relabel_nodes=True, num_nodes=data.num_nodes)
        key = lambda e: sorted(map(tuple, e.t().tolist()))  # noqa: E731
        assert key(seg.edge_index) == key(edge_index)
        assert seg.edge_attr.size(0) == edge_attr.size(0)
        assert torch.allclose(seg.edge_attr.sum(0), edge_attr.sum(0),
                              atol=1e-5)


def test_sampling_splits_segments(dataset):
    torch.manual_seed(0)
    loader = SegmentLoader(dataset, batch_size=3, num_sampled=2, others=True,
                           whole=True)
    batch = next(iter(loader))
    assert torch.equal(batch.y, torch.tensor([0, 1, 2]))
    assert torch.equal(torch.bincount(batch.sampled.graph), torch.tensor(
        [2, 1, 2]))
    assert torch.equal(torch.bincount(batch.others.graph, minlength=3),
                       torch.tensor([1, 0, 3]))
    for g in range(3):
        seen = torch.cat([batch.sampled.segment[batch.sampled.graph == g],
                          batch.others.segment[batch.others.graph == g]])
        assert sorted(seen.tolist()) == list(range(int(
            batch.num_segments[g])))
    assert batch.others.data.num_graphs == 4
    assert batch.whole.num_graphs == 3
    assert batch.whole.num_nodes == 30 + 7 + 45
    assert 'seg_ptr' not in batch.whole
    moved = batch.to('cpu')
    assert moved.batch_size == 3


def test_loader_errors(dataset):
    with pytest.raises(ValueError, match="'num_sampled'"):
        SegmentLoader(dataset, num_sampled=0)
    with pytest.raises(ValueError, match="'indices'"):
        SegmentLoader(dataset, indices=[5])
    with pytest.raises(ValueError, match="SegmentedDataset"):
        next(iter(SegmentLoader(graphs())))
    loader = SegmentLoader(dataset, batch_size=2, indices=[2, 0])
    assert next(iter(loader)).graph_id.tolist() == [2, 0]
