import pytest
import torch
from torch_geometric.nn import GATConv
from torch_geometric.nn.dense.linear import Linear as PyGLinear

from torch_autoscale.nn.functional import dropout
from torch_autoscale.nn.linear import (
    Linear,
    SparseInputLinear,
    sparse_input_linear,
)
from torch_autoscale.utils import CSRTranspose, csr_cache, transpose_csr


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


def test_dropout_output_shares_the_transpose(monkeypatch):
    from torch_autoscale.utils import sparse as sparse_module
    calls = []
    original = sparse_module._transpose_structure

    def counting(x):
        calls.append(x)
        return original(x)

    monkeypatch.setattr(sparse_module, '_transpose_structure', counting)
    x = sparse_features().to_sparse_csr()
    lin = Linear(50, 8)
    for _ in range(2):  # Two training steps on the same features.
        lin(dropout(x, p=0.5)).sum().backward()
    # The features' transpose structure was built once, for the dropout
    # output of the first step, held by the cache of 'x', and the dropout
    # output of the second step used it.
    assert len(calls) == 1 and calls[0] is not x
    structure = csr_cache(x).structure
    assert isinstance(structure, CSRTranspose)
    out = dropout(x, p=0.5)
    assert csr_cache(out).source is csr_cache(x)
    assert csr_cache(out).transpose_structure(out) is structure
    assert transpose_csr(x) is not None and len(calls) == 1
    expected = out.to_dense().t()
    assert torch.equal(
        torch.sparse_csr_tensor(structure.rowptr, structure.col,
                                out.values()[structure.perm],
                                size=(50, 30)).to_dense(), expected)
    # Nothing is set on the tensors.
    assert vars(x) == {} and vars(out) == {}


@pytest.mark.parametrize('in_channels', [50, -1])
def test_sparse_input_linear_replaces_pyg_linear(in_channels):
    torch.manual_seed(0)
    ref = GATConv(in_channels, 4, heads=2)
    after_ref = torch.rand(3)
    torch.manual_seed(0)
    conv = GATConv(in_channels, 4, heads=2)
    keys = list(conv.state_dict())
    lin = conv.lin
    conv.lin = sparse_input_linear(conv.lin)
    # Building it drew no random numbers: later layers initialize alike.
    assert torch.equal(torch.rand(3), after_ref)
    # A new module of its own class, sharing the parameters; the PyG layer
    # keeps its class.
    assert type(conv.lin) is SparseInputLinear and conv.lin is not lin
    assert type(lin) is PyGLinear
    assert conv.lin.weight is lin.weight
    assert conv.lin.weight_initializer == 'glorot' and conv.lin.bias is None
    assert list(conv.state_dict()) == keys

    x = sparse_features()
    edge_index = torch.randint(30, (2, 100))
    ref(x, edge_index)  # Lazy layers take their sizes.
    conv(x.to_sparse_csr(), edge_index)
    conv.load_state_dict(ref.state_dict())
    grads = []
    for module, features in ((conv, x.to_sparse_csr()), (ref, x)):
        module.zero_grad()
        out = module(features, edge_index)
        (out * torch.arange(8.0)).sum().backward()
        grads.append((out.detach(), module.lin.weight.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-5)

    # reset_parameters draws as PyG's layer does.
    torch.manual_seed(1)
    ref.reset_parameters()
    torch.manual_seed(1)
    conv.reset_parameters()
    assert torch.equal(conv.lin.weight, ref.lin.weight)


def test_sparse_input_linear_keeps_other_modules():
    other = torch.nn.Linear(3, 2)
    assert sparse_input_linear(other) is other
    assert type(other) is torch.nn.Linear
    assert sparse_input_linear(None) is None
    lin = PyGLinear(3, 2, bias=True, bias_initializer='zeros')
    out = SparseInputLinear.from_linear(lin)
    assert out.bias is lin.bias and out.bias_initializer == 'zeros'
    with pytest.raises(ValueError, match=r"^SparseInputLinear.from_linear: "
                       r"'lin' must be a torch_geometric.nn.dense.Linear"):
        SparseInputLinear.from_linear(other)
