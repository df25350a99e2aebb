import pytest
import torch
from torch_geometric.nn import GATConv
from torch_geometric.nn.dense.linear import Linear as PyGLinear

from torch_autoscale.nn.functional import dropout
from torch_autoscale.nn.linear import Linear, sparse_input_linear
from torch_autoscale.utils.sparse import _transpose_structure


def sparse_features(num_rows=30, num_cols=50, density=0.1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(num_rows, num_cols, generator=gen)
    x[torch.rand(num_rows, num_cols, generator=gen) > density] = 0
    return x


@pytest.mark.parametrize('bias', [True, False])
def test_linear_sparse_gradients_equal_dense(bias):
    x = sparse_features()
    lin = Linear(50, 8, bias=bias)
    grads = []
    for features in (x.to_sparse_csr(), x):
        lin.zero_grad()
        out = lin(features)
        (out * torch.arange(8.0)).sum().backward()
        grads.append((out.detach(), lin.weight.grad.clone(),
                      lin.bias.grad.clone() if bias else None))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)
    if bias:
        assert torch.allclose(grads[0][2], grads[1][2], atol=1e-6)


def test_linear_matches_torch_linear():
    lin = Linear(50, 8)
    ref = torch.nn.Linear(50, 8)
    ref.load_state_dict(lin.state_dict())
    x = sparse_features()
    assert torch.allclose(lin(x), ref(x))
    with torch.no_grad():  # Sparse input without autograd: PyTorch's path.
        assert torch.allclose(lin(x.to_sparse_csr()), ref(x), atol=1e-6)


def test_dropout_output_shares_the_transpose():
    x = sparse_features().to_sparse_csr()
    lin = Linear(50, 8)
    for _ in range(2):  # Two training steps on the same features.
        lin(dropout(x, p=0.5)).sum().backward()
    # The features' transpose structure was built once, on 'x', and the
    # dropout outputs of both steps used it.
    structure = x._torch_autoscale_transpose_structure
    out = dropout(x, p=0.5)
    assert _transpose_structure(out) is structure
    expected = out.to_dense().t()
    assert torch.equal(
        torch.sparse_csr_tensor(structure[0], structure[1],
                                out.values()[structure[2]],
                                size=(50, 30)).to_dense(), expected)


def test_sparse_input_linear_switches_pyg_linear_only():
    conv = GATConv(50, 4, heads=2)
    keys = list(conv.state_dict())
    sparse_input_linear(conv.lin)
    assert isinstance(conv.lin, PyGLinear)
    assert list(conv.state_dict()) == keys
    x = sparse_features()
    edge_index = torch.randint(30, (2, 100))
    grads = []
    for features in (x.to_sparse_csr(), x):
        conv.zero_grad()
        conv(features, edge_index).sum().backward()
        grads.append(conv.lin.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-5)

    other = torch.nn.Linear(3, 2)
    assert sparse_input_linear(other) is other
    assert type(other) is torch.nn.Linear
