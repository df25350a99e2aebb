import pytest
import torch

from torch_autoscale.history import History, SegmentHistory


def test_layout_and_index():
    history = SegmentHistory([3, 1, 4], 5)
    # A segment table wraps a History rather than being one: its rows are
    # addressed by (graph, segment) pairs, not node indices.
    assert not isinstance(history, History)
    assert isinstance(history.table, History)
    assert history.num_graphs == 3
    assert history.num_rows == 8
    assert history.seg_ptr.tolist() == [0, 3, 4, 8]
    assert history.seg_ptr.dtype == torch.long
    assert history.num_segments.tolist() == [3, 1, 4]
    assert history.table.emb.size() == (8, 5)

    graph = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2])
    segment = torch.tensor([0, 1, 2, 0, 0, 1, 2, 3])
    assert history.index(graph, segment).tolist() == list(range(8))
    assert history.index(torch.tensor([2, 0]),
                         torch.tensor([3, 1])).tolist() == [7, 1]
    empty = torch.empty(0, dtype=torch.long)
    assert history.index(empty, empty).numel() == 0

    # A tensor works as well as a list:
    other = SegmentHistory(torch.tensor([3, 1, 4], dtype=torch.int32), 5)
    assert other.seg_ptr.tolist() == [0, 3, 4, 8]


def test_push_pull_round_trip():
    history = SegmentHistory([3, 1, 4], 4)
    assert torch.equal(history.pull(), torch.zeros(8, 4))

    graph = torch.tensor([2, 0, 1])
    segment = torch.tensor([3, 1, 0])
    x = torch.randn(3, 4)
    history.push(x, graph, segment)
    assert torch.equal(history.pull(graph, segment), x)
    assert torch.equal(history.pull(torch.tensor([1]), torch.tensor([0])),
                       x[2:])
    out = history.pull()
    assert torch.equal(out[[7, 1, 3]], x)
    assert torch.equal(out[[0, 2, 4, 5, 6]], torch.zeros(5, 4))

    # Pushing the whole table:
    x = torch.randn(8, 4)
    history.push(x)
    assert torch.equal(history.pull(), x)
    assert bool(history.written.all())


def test_written():
    history = SegmentHistory([3, 1, 4], 2)
    assert history.written.dtype == torch.bool
    assert history.written.size() == (8, )
    assert not bool(history.written.any())

    history.push(torch.randn(2, 2), torch.tensor([0, 2]),
                 torch.tensor([2, 0]))
    assert history.written.nonzero().view(-1).tolist() == [2, 4]

    history.reset_parameters()
    assert not bool(history.written.any())
    assert torch.equal(history.pull(), torch.zeros(8, 2))

    # A failed push marks nothing:
    with pytest.raises(ValueError):
        history.push(torch.randn(1, 3), torch.tensor([0]), torch.tensor([0]))
    assert not bool(history.written.any())


def test_pull_graphs():
    history = SegmentHistory([3, 1, 4], 2)
    x = torch.arange(16, dtype=torch.float).view(8, 2)
    history.push(x)

    out, batch = history.pull_graphs(torch.tensor([2, 0, 1]))
    assert torch.equal(out, x[[4, 5, 6, 7, 0, 1, 2, 3]])
    assert batch.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert batch.dtype == torch.long

    out, batch = history.pull_graphs(torch.tensor([1, 1]))
    assert torch.equal(out, x[[3, 3]])
    assert batch.tolist() == [0, 1]

    out, batch = history.pull_graphs(torch.empty(0, dtype=torch.long))
    assert out.size() == (0, 2) and batch.numel() == 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    history = SegmentHistory([2, 3], 8, dtype=dtype)
    assert history.table.emb.dtype == dtype
    x = torch.randn(5, 8)
    history.push(x, torch.tensor([0, 0, 1, 1, 1]),
                 torch.tensor([0, 1, 0, 1, 2]))
    out = history.pull()
    assert out.dtype == torch.float32
    assert torch.equal(out, x.to(dtype).float())
    out, _ = history.pull_graphs(torch.tensor([1]))
    assert out.dtype == torch.float32
    assert torch.equal(out, x[2:].to(dtype).float())


def test_model_move_keeps_table_on_host():
    history = SegmentHistory([2, 1], 3)
    module = torch.nn.ModuleList([history])
    module.to('meta')
    assert history.device == torch.device('meta')
    assert history.table.emb.device.type == 'cpu'
    assert history.seg_ptr.device.type == 'cpu'
    assert history.written.device.type == 'cpu'
    assert 'SegmentHistory(num_graphs=2, num_rows=3' in repr(history)


def test_errors():
    for num_segments in [[], torch.tensor([], dtype=torch.long)]:
        with pytest.raises(ValueError, match="'num_segments' is empty"):
            SegmentHistory(num_segments, 4)
    for num_segments in [[2, 0, 1], [-1], torch.tensor([1, 0])]:
        with pytest.raises(ValueError, match="at least 1"):
            SegmentHistory(num_segments, 4)
    for num_segments in [[1.5, 2], [True, 2], torch.tensor([1.0, 2.0]),
                         torch.tensor([True])]:
        with pytest.raises(ValueError, match="'num_segments' must hold"):
            SegmentHistory(num_segments, 4)
    with pytest.raises(ValueError, match="one-dimensional"):
        SegmentHistory(torch.ones(2, 2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="'num_segments' must be a tensor"):
        SegmentHistory(3, 4)
    with pytest.raises(ValueError, match="'channels'"):
        SegmentHistory([1, 2], 0)
    with pytest.raises(ValueError, match="'dtype'"):
        SegmentHistory([1, 2], 4, dtype=torch.long)

    history = SegmentHistory([3, 1, 4], 4)
    with pytest.raises(ValueError, match="'graph' holds indices outside"):
        history.index(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="'graph' holds indices outside"):
        history.pull(torch.tensor([-1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="'graph' holds indices outside"):
        history.pull_graphs(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="'segment' holds indices outside"):
        history.index(torch.tensor([0, 1]), torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="'segment' holds indices outside"):
        history.pull(torch.tensor([2]), torch.tensor([-1]))
    with pytest.raises(ValueError, match="'segment' holds indices outside"):
        history.push(torch.randn(1, 4), torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="differ in length"):
        history.index(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="'graph' must be an int64"):
        history.index(torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="'segment' must be an int64"):
        history.index(torch.tensor([0]), torch.tensor([0], dtype=torch.int))

    with pytest.raises(ValueError, match="given together"):
        history.pull(torch.tensor([0]))
    with pytest.raises(ValueError, match="given together"):
        history.pull(segment=torch.tensor([0]))
    with pytest.raises(ValueError, match="given together"):
        history.push(torch.randn(1, 4), torch.tensor([0]))

    with pytest.raises(ValueError, match="'x' has 3 channels"):
        history.push(torch.randn(2, 3), torch.tensor([0, 1]),
                     torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="'x' has 1 rows"):
        history.push(torch.randn(1, 4), torch.tensor([0, 1]),
                     torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="cover all 8 nodes"):
        history.push(torch.randn(2, 4))
