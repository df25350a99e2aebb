import pytest
import torch

from torch_autoscale.history import History


def test_push_pull_by_n_id():
    history = History(10, 4)
    assert history.emb.device.type == 'cpu'
    assert torch.equal(history.pull(), torch.zeros(10, 4))

    x = torch.randn(3, 4)
    n_id = torch.tensor([7, 2, 5])
    history.push(x, n_id)
    assert torch.equal(history.pull(n_id), x)
    assert torch.equal(history.pull(torch.tensor([5])), x[2:])
    assert torch.equal(history.pull()[[0, 1, 3, 4, 6, 8, 9]],
                       torch.zeros(7, 4))


def test_push_pull_by_offset_count():
    history = History(10, 2)
    x = torch.randn(5, 2)
    history.push(x, offset=torch.tensor([1, 6]), count=torch.tensor([2, 3]))
    out = history.pull()
    assert torch.equal(out[1:3], x[:2])
    assert torch.equal(out[6:9], x[2:])
    assert torch.equal(out[[0, 3, 4, 5, 9]], torch.zeros(5, 2))
    # Runs win over n_id, and both describe the same rows here.
    history.reset_parameters()
    history.push(x, torch.tensor([1, 2, 6, 7, 8]), torch.tensor([1, 6]),
                 torch.tensor([2, 3]))
    assert torch.equal(history.pull(torch.tensor([1, 2, 6, 7, 8])), x)


def test_push_whole_table():
    history = History(4, 3)
    x = torch.randn(4, 3)
    history.push(x)
    assert torch.equal(history.pull(), x)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    history = History(6, 8, dtype=dtype)
    assert history.emb.dtype == dtype
    x = torch.randn(6, 8)
    history.push(x, torch.arange(6))
    out = history.pull()
    assert out.dtype == torch.float32
    assert torch.equal(out, x.to(dtype).float())


def test_model_move_keeps_table_on_host():
    history = History(5, 2)
    module = torch.nn.ModuleList([history])
    module.to('meta')
    assert history.device == torch.device('meta')
    assert history.emb.device.type == 'cpu'
    module.double()
    assert history.emb.dtype == torch.float32
    assert 'History(5, 2' in repr(history)


def test_errors():
    with pytest.raises(ValueError, match="'channels'"):
        History(10, 0)
    with pytest.raises(ValueError, match="'num_nodes'"):
        History(-1, 4)
    with pytest.raises(ValueError, match="'dtype'"):
        History(10, 4, dtype=torch.long)

    history = History(10, 4)
    with pytest.raises(ValueError, match="'x' has 3 channels"):
        history.push(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="two-dimensional"):
        history.push(torch.randn(4), torch.tensor([0]))
    with pytest.raises(ValueError, match="floating point"):
        history.push(torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'n_id' has 3 entries"):
        history.push(torch.randn(2, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="outside"):
        history.push(torch.randn(1, 4), torch.tensor([10]))
    with pytest.raises(ValueError, match="outside"):
        history.pull(torch.tensor([-1]))
    with pytest.raises(ValueError, match="int64"):
        history.pull(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="together"):
        history.push(torch.randn(2, 4), offset=torch.tensor([0]))
    with pytest.raises(ValueError, match="'count' sums to 3"):
        history.push(torch.randn(2, 4), offset=torch.tensor([0]),
                     count=torch.tensor([3]))
    with pytest.raises(ValueError, match="exceed"):
        history.push(torch.randn(2, 4), offset=torch.tensor([9]),
                     count=torch.tensor([2]))
    with pytest.raises(ValueError, match="cover all 10 nodes"):
        history.push(torch.randn(2, 4))
    with pytest.raises(ValueError, match="'x' is on meta"):
        history.push(torch.randn(2, 4, device='meta'), torch.tensor([0, 1]))
