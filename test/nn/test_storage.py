import gc
import os

import pytest
import torch

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn import ScalableGNN
from torch_autoscale.nn.models import (
    APPNP,
    GAT,
    GCN,
    GCNII,
    GIN,
    PNA,
    PNA_JK,
    GraphSAGE,
)
from torch_autoscale.testing import (
    clustered_graph,
    onlyCUDA,
    train_gas_epoch,
)


def train_steps(model, data, ptr, epochs, optimizer):
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=True)
    losses = []
    for _ in range(epochs):
        losses += train_gas_epoch(model, optimizer, loader)
    return losses


def run(data, ptr, **kwargs):
    torch.manual_seed(12345)
    model = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=4,
                dropout=0.5, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = train_steps(model, data, ptr, 2, optimizer)
    tables = [h.pull() for h in model.histories]
    out = model.mini_inference(EvalSubgraphLoader(data, ptr, batch_size=2),
                               progress=False)
    return model, losses, out, tables


def assert_same_run(a, b):
    assert a[1] == b[1]  # losses
    assert torch.equal(a[2], b[2])  # mini_inference outputs
    for x, y in zip(a[3], b[3]):  # history contents after training
        assert torch.equal(x, y)


@pytest.mark.parametrize('dtype', [None, torch.float16])
def test_gcn_host_and_disk_train_identically(dtype, tmp_path):
    data, ptr = clustered_graph(300, 6, 'gcn_norm', num_classes=4)
    host = run(data, ptr, history_dtype=dtype)
    disk = run(data, ptr, history_dtype=dtype, history_storage='disk',
               history_dir=str(tmp_path))
    assert [h.storage for h in host[0].histories] == ['host'] * 3
    assert [h.storage for h in disk[0].histories] == ['disk'] * 3
    assert [h.directory for h in disk[0].histories] == [
        str(tmp_path)] * 3
    assert_same_run(host, disk)
    assert host[0].history_bytes() == disk[0].history_bytes() == (
        3 * 300 * 16 * (dtype or torch.float32).itemsize)

    del disk
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_mixed_dtypes_and_storages(tmp_path):
    data, ptr = clustered_graph(300, 6, 'gcn_norm', num_classes=4)
    dtypes = [torch.float32, torch.float16, torch.bfloat16]
    mixed = run(data, ptr, history_dtype=dtypes,
                history_storage=['host', 'disk', 'device'],
                history_device='cpu', history_dir=str(tmp_path))
    model = mixed[0]
    assert [h.storage for h in model.histories] == ['host', 'disk', 'device']
    assert [h.dtype for h in model.histories] == dtypes
    assert model.histories[1].directory == str(tmp_path)
    assert model.history_bytes() == 300 * 16 * (4 + 2 + 2)
    # The same dtypes, all in host memory: the tier changes nothing.
    assert_same_run(run(data, ptr, history_dtype=dtypes), mixed)


def test_pool_dtype_is_the_widest():
    def pool(dtypes):
        return ScalableGNN(50, [8, 16, 4], 4, pool_size=2, buffer_size=10,
                           history_dtype=dtypes).histories.pool

    mixed = pool([torch.float16, torch.float32, torch.bfloat16])
    assert mixed.dtype == torch.float32
    assert mixed.capacity == 10 * 16 * 4
    half = pool([torch.float16, torch.bfloat16, None])
    assert half.dtype == torch.float32  # None is the default dtype.
    half = pool([torch.float16, torch.bfloat16, torch.float16])
    assert half.dtype.itemsize == 2
    assert half.capacity == 10 * 16 * 2


def test_history_option_errors():
    with pytest.raises(ValueError, match="'history_storage' lists 1 entries"):
        ScalableGNN(10, 4, 3, history_storage=['host'])
    with pytest.raises(ValueError, match="'history_dtype' lists 3 entries"):
        ScalableGNN(10, 4, 3, history_dtype=[torch.float16] * 3)
    with pytest.raises(ValueError, match="'history_storage' must be one of"):
        ScalableGNN(10, 4, 3, history_storage='ssd')
    with pytest.raises(ValueError, match="'history_storage' must be one of"):
        ScalableGNN(10, 4, 3, history_storage=['host', 'ssd'])
    with pytest.raises(ValueError, match="'history_dtype' must hold dtype"):
        ScalableGNN(10, 4, 3, history_dtype=['float16', None])
    with pytest.raises(ValueError, match="'history_dtype' must be a dtype"):
        ScalableGNN(10, 4, 3, history_dtype='float16')
    with pytest.raises(ValueError, match="'history_device' is missing"):
        ScalableGNN(10, 4, 3, history_storage=['device', 'host'])
    with pytest.raises(ValueError, match="'history_device' is meta"):
        ScalableGNN(10, 4, 3, history_device='meta', history_storage='host')
    # 'history_device' applies to the histories stored on a device only.
    model = ScalableGNN(10, 4, 3, history_device='meta',
                        history_storage=['device', 'host'])
    assert [h.emb.device.type for h in model.histories] == ['meta', 'cpu']
    assert ScalableGNN(10, 4, 1, history_storage=[]).history_bytes() == 0


MODELS = {
    'GCN': lambda n, **kw: GCN(n, 3, 8, 2, 3, **kw),
    'GraphSAGE': lambda n, **kw: GraphSAGE(n, 3, 8, 2, 3, **kw),
    'GIN': lambda n, **kw: GIN(n, 3, 8, 2, 3, **kw),
    'GAT': lambda n, **kw: GAT(n, 3, 4, 2, 2, 1, 3, **kw),
    'APPNP': lambda n, **kw: APPNP(n, 3, 8, 2, 3, alpha=0.1, **kw),
    'GCNII': lambda n, **kw: GCNII(n, 3, 8, 2, 3, alpha=0.1, theta=0.5,
                                   **kw),
    'PNA': lambda n, **kw: PNA(n, 3, 8, 2, 3, ['mean'], ['identity'],
                               torch.tensor([0, 2, 1]), **kw),
    'PNA_JK': lambda n, **kw: PNA_JK(n, 3, 8, 2, 3, ['mean'], ['identity'],
                                     torch.tensor([0, 2, 1]), **kw),
}


@pytest.mark.parametrize('name', list(MODELS))
def test_models_pass_history_options_on(name, tmp_path):
    model = MODELS[name](20, history_storage=['disk', 'host'],
                         history_dtype=[torch.float16, None],
                         history_dir=str(tmp_path))
    assert [h.storage for h in model.histories] == ['disk', 'host']
    assert [h.dtype for h in model.histories] == [torch.float16,
                                                  torch.float32]
    assert model.history_bytes() == sum(
        20 * h.channels * h.dtype.itemsize for h in model.histories)
    assert model.histories[0].directory == str(tmp_path)
    assert model.histories[1].path is None


@onlyCUDA
def test_async_pool_with_disk_and_mixed_histories(tmp_path):
    data, ptr = clustered_graph(300, 6, 'gcn_norm', num_classes=4)
    loader = SubgraphLoader(data, ptr, batch_size=2)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    kwargs = dict(history_dtype=[torch.float16, torch.float32,
                                 torch.bfloat16])
    args = (data.num_nodes, data.num_features, 16, 4, 4)
    sync = GCN(*args, **kwargs).cuda()
    pool = GCN(*args, pool_size=2,
               buffer_size=eval_loader.required_buffer_size(),
               history_storage=['disk', 'host', 'disk'],
               history_dir=str(tmp_path), **kwargs).cuda()
    pool.load_state_dict(sync.state_dict())
    assert pool.histories.pool.dtype == torch.float32
    assert pool.histories.uses_pool()

    sync.eval(), pool.eval()
    full = sync(data.x.cuda(), data.adj_t.cuda()).cpu()
    outs = [m.mini_inference(eval_loader, progress=False)
            for m in (sync, pool)]
    assert torch.equal(outs[0], outs[1])
    assert torch.allclose(outs[0], full, atol=0.1)  # Half-precision tables.
    for a, b in zip(sync.histories, pool.histories):
        assert torch.equal(a.emb, b.emb)

    for batch in loader:  # GAS steps: the same outputs and histories.
        batch = batch.to('cuda')
        outs = [m(batch.data.x, batch.data.adj_t, batch) for m in (sync, pool)]
        assert torch.equal(outs[0], outs[1])
        for a, b in zip(sync.histories, pool.histories):
            assert torch.equal(a.emb, b.emb)

