import copy
import gc
import io
import pickle

import pytest
import torch
import torch.nn.functional as F

from torch_autoscale.errors import NodeOrderError
from torch_autoscale.loader import (
    NodeOrder,
    NodeOrderTensor,
    PartitionedData,
)
from torch_autoscale.nn.models import GCN
from test.loader.test_partitioned_data import random_graph


@pytest.fixture
def trained():
    data = random_graph(num_nodes=120, num_edges=60)
    data.test_mask = ~data.train_mask
    pdata = PartitionedData(data, 6, normalize='gcn')
    model = GCN(data.num_nodes, 6, 16, 3, num_layers=2)
    out = model.mini_inference(pdata.eval_loader(batch_size=2),
                               progress=False)
    return data, pdata, out


def test_output_against_input_labels_raises(trained):
    data, pdata, out = trained
    assert isinstance(out, NodeOrderTensor)
    pred = out.argmax(-1)
    mistakes = [
        lambda: pred[data.test_mask],
        lambda: pred == data.y,
        lambda: data.y == pred,
        lambda: torch.eq(pred, data.y),
        lambda: F.cross_entropy(out, data.y),
        lambda: out[data.test_mask[:50]],  # A view of the input's mask.
        lambda: pred.cpu().clone() == data.y,
    ]
    for mistake in mistakes:
        with pytest.raises(NodeOrderError, match=r'pdata\.to_original'):
            mistake()


def test_output_in_the_right_order_combines(trained):
    data, pdata, out = trained
    pred = out.argmax(-1)
    acc = (pred == pdata.data.y)[pdata.data.test_mask].float().mean()
    assert type(acc) is torch.Tensor  # Scalars are no longer per node.
    orig = pdata.to_original(out)
    acc_orig = (orig.argmax(-1) == data.y)[data.test_mask].float().mean()
    assert float(acc) == float(acc_orig)
    # Unknown tensors combine freely, in either order.
    assert torch.equal(out + torch.zeros_like(out), out)
    assert pdata.to_permuted(orig).equal(out)


def test_mapped_output_against_permuted_labels_raises(trained):
    _, pdata, out = trained
    orig = pdata.to_original(out)
    assert orig._order == 'original'
    with pytest.raises(NodeOrderError, match=r'pdata\.to_permuted'):
        orig.argmax(-1) == pdata.data.y
    with pytest.raises(NodeOrderError):
        out + orig  # Two tagged tensors of one PartitionedData.
    permuted = pdata.to_permuted(orig)
    assert permuted._order == 'permuted'
    assert torch.equal(permuted.argmax(-1) == pdata.data.y,
                       out.argmax(-1) == pdata.data.y)


def test_results_keep_the_order(trained):
    data, _, out = trained
    values, index = out.max(dim=-1)
    for t in (values, index, out.cpu(), out.t().t(), out.split(7)[0]):
        assert isinstance(t, NodeOrderTensor) and t._order == 'permuted'
    out.mul_(1.0)  # In place.
    assert out._order == 'permuted'
    assert copy.deepcopy(out)._order == 'permuted'
    assert type(out.sum()) is torch.Tensor
    assert out.as_subclass(torch.Tensor)[data.test_mask].numel() > 0


def test_saved_as_plain_tensor(trained):
    _, _, out = trained
    buf = io.BytesIO()
    torch.save(out, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    assert type(loaded) is torch.Tensor and torch.equal(loaded, out)
    assert type(pickle.loads(pickle.dumps(out))) is torch.Tensor


def test_identity_permutation_is_not_tagged():
    data = random_graph()
    pdata = PartitionedData(data, 4, method='contiguous')
    assert pdata.node_order is None
    model = GCN(data.num_nodes, 6, 8, 3, num_layers=2)
    out = model.mini_inference(pdata.eval_loader(), progress=False)
    assert type(out) is torch.Tensor
    assert (out.argmax(-1) == data.y).shape == data.y.shape  # Correct here.


def test_plain_loader_output_is_not_tagged(trained):
    _, pdata, _ = trained
    from torch_autoscale.loader import EvalSubgraphLoader
    model = GCN(pdata.num_nodes, 6, 8, 3, num_layers=2)
    out = model.mini_inference(EvalSubgraphLoader(pdata.data, pdata.ptr),
                               progress=False)
    assert type(out) is torch.Tensor


def test_node_order_registry():
    order = NodeOrder('g')
    a = torch.arange(10)
    order.register(a, 'original')
    assert order.order_of(a) == 'original'
    assert order.order_of(a[2:5]) == 'original'  # Views share the storage.
    assert order.order_of(a.clone()) is None
    assert order.order_of(torch.empty(0)) is None
    tagged = order.tag(torch.ones(10), 'permuted')
    with pytest.raises(NodeOrderError, match="'g'|of g"):
        tagged + a
    del a
    gc.collect()
    b = torch.arange(10)  # May reuse the freed storage: must not be known.
    assert order.order_of(b) is None
    tagged + b
    with pytest.raises(ValueError, match="'order' must be one of"):
        order.tag(torch.ones(2), 'sorted')
    with pytest.raises(ValueError, match="'order' must be one of"):
        order.register(torch.ones(2), 'sorted')
    assert pickle.loads(pickle.dumps(order)).name == 'g'
