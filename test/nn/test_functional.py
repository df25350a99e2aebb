import pytest
import torch

from torch_autoscale.nn.functional import dropout


def test_dropout_sparse_keeps_zeros_and_rescales():
    torch.manual_seed(0)
    x = torch.rand(200, 100) + 1.0
    x = x * (torch.rand(200, 100) < 0.3)
    sparse = x.to_sparse_csr()
    out = dropout(sparse, p=0.4, training=True)
    assert out.layout == torch.sparse_csr
    dense = out.to_dense()
    assert bool((dense[x == 0] == 0).all())
    kept = dense[x != 0] != 0
    # Kept entries are scaled by 1 / (1 - p), the rest are dropped:
    assert torch.allclose(dense[x != 0][kept], x[x != 0][kept] / 0.6)
    assert abs(float(kept.float().mean()) - 0.6) < 0.03
    # The same distribution as dense dropout (means of the non-zeros):
    ref = torch.nn.functional.dropout(x, p=0.4)
    assert abs(float(dense.sum() - ref.sum())) / float(x.sum()) < 0.03


def test_dropout_identity_and_dense():
    x = torch.rand(10, 5)
    sparse = x.to_sparse_csr()
    assert dropout(sparse, p=0.5, training=False) is sparse
    assert dropout(sparse, p=0.0, training=True) is sparse
    assert torch.equal(dropout(x, p=0.5, training=False), x)
    with pytest.raises(ValueError, match="to_sparse_csr"):
        dropout(x.to_sparse_coo(), p=0.5)


def test_dropout_dense_cpu_distribution_and_gradient():
    torch.manual_seed(0)
    x = (torch.rand(300, 200) + 1.0).requires_grad_()
    out = dropout(x, p=0.3, training=True)
    kept = out != 0
    assert abs(float(kept.float().mean()) - 0.7) < 0.01
    assert torch.allclose(out[kept], x[kept] / 0.7)
    out.sum().backward()
    # The gradient is the mask times the scale:
    assert torch.allclose(x.grad, kept.float() / 0.7)
    assert torch.equal(dropout(x, p=0.0, training=True), x)
    assert bool((dropout(x, p=1.0, training=True) == 0).all())
    with pytest.raises(ValueError, match="'p'"):
        dropout(x, p=1.5)
    with pytest.raises(ValueError, match="'p'"):
        dropout(x.detach().to_sparse_csr(), p=-0.1)
