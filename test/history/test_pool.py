import pytest
import torch

from torch_autoscale.history import AsyncIOPool, History
from torch_autoscale.testing import onlyCUDA


def test_pool_arguments():
    pool = AsyncIOPool(2, 100, 16)
    assert pool.capacity == 100 * 16 * 4
    assert not pool.active
    assert 'pool_size=2' in repr(pool)
    for args in [(0, 10, 4), (2, 0, 4), (2, 10, -1)]:
        with pytest.raises(ValueError, match='positive integer'):
            AsyncIOPool(*args)
    with pytest.raises(RuntimeError, match='CUDA devices only'):
        pool.async_pull(torch.randn(4, 16), None, None, torch.tensor([0]))


@onlyCUDA
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
def test_pool_matches_sync_path(dtype):
    history = History(1000, 16, dtype=dtype)
    history.push(torch.randn(1000, 16))
    pool = AsyncIOPool(2, 300, 16).to('cuda')
    index = torch.randperm(1000)[:200]
    offset, count = torch.tensor([10, 500]), torch.tensor([50, 40])
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        pool.async_pull(history.emb, None, None, index)
        pool.async_pull(history.emb, offset, count, index[:10])
        a = pool.synchronize_pull().clone()
        b = pool.synchronize_pull().clone()
    stream.synchronize()
    assert torch.equal(a.cpu(), history.emb[index])
    expected = torch.cat([history.emb[10:60], history.emb[500:540],
                          history.emb[index[:10]]])
    assert torch.equal(b.cpu(), expected)

    x = torch.randn(90, 16, device='cuda')
    with torch.cuda.stream(stream):
        pool.async_push(x, offset, count, history.emb)
        pool.synchronize_push()
    assert torch.equal(history.emb[10:60], x[:50].cpu().to(dtype))
    assert torch.equal(history.emb[500:540], x[50:].cpu().to(dtype))


@onlyCUDA
def test_pool_buffer_too_small():
    pool = AsyncIOPool(1, 10, 4).to('cuda')
    src = torch.randn(100, 4).pin_memory()
    with pytest.raises(ValueError, match='buffer_size >= 20'):
        with torch.cuda.stream(torch.cuda.Stream()):
            pool.async_pull(src, None, None, torch.arange(20))
