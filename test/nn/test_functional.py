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
