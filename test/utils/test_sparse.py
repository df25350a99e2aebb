import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.utils import (
    CSRCache,
    CSRTranspose,
    csr_adj_t,
    csr_cache,
    index_select_rows,
    narrow_rows,
    sparsify_features,
    to_csr,
    transpose_csr,
    with_values,
)
from torch_autoscale.utils.sparse import spmm


def test_csr_adj_t():
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 0]])
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    adj_t = csr_adj_t(edge_index, 4, weight)
    assert adj_t.layout == torch.sparse_csr
    expected = torch.zeros(4, 4)
    expected[edge_index[1], edge_index[0]] = weight
    assert torch.equal(adj_t.to_dense(), expected)
    assert torch.equal(csr_adj_t(edge_index, 4).to_dense(),
                       (expected > 0).float())


def test_to_csr_edge_perm():
    edge_index = torch.tensor([[2, 0, 1], [0, 1, 0]])
    rowptr, col, value, perm = to_csr(Data(edge_index=edge_index,
                                           num_nodes=3))
    assert value is None
    assert rowptr.tolist() == [0, 2, 3, 3]
    assert col.tolist() == [1, 2, 0]
    assert torch.equal(edge_index[0, perm], col)


def test_errors():
    with pytest.raises(ValueError, match="'edge_weight'"):
        csr_adj_t(torch.tensor([[0], [1]]), 2, torch.ones(2))
    with pytest.raises(ValueError, match='neither'):
        to_csr(Data(x=torch.randn(3, 1)))
    with pytest.raises(ValueError, match=r'\[2, num_edges\]'):
        to_csr(Data(edge_index=torch.zeros(3, 2, dtype=torch.long),
                    num_nodes=3))


def random_sparse(num_rows=50, num_cols=30, density=0.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_rows, num_cols, generator=gen)
    x = x * (torch.rand(num_rows, num_cols, generator=gen) < density)
    x[7] = 0.0  # An empty row.
    return x


@pytest.mark.parametrize('index', [
    [3, 7, 0, 49, 3, 12],  # Repeats, an empty row, first and last rows.
    [],
    list(range(50)),
])
def test_index_select_rows(index):
    x = random_sparse()
    index = torch.tensor(index, dtype=torch.long)
    out = index_select_rows(x.to_sparse_csr(), index)
    assert out.layout == torch.sparse_csr
    assert out.size() == (index.numel(), 30)
    assert torch.equal(out.to_dense(), x[index])
    assert torch.equal(index_select_rows(x, index), x[index])


def test_narrow_rows():
    x = random_sparse()
    for num_rows in (0, 1, 8, 50):
        out = narrow_rows(x.to_sparse_csr(), num_rows)
        assert out.layout == torch.sparse_csr
        assert torch.equal(out.to_dense(), x[:num_rows])
        assert torch.equal(narrow_rows(x, num_rows), x[:num_rows])


def test_row_selection_errors():
    x = random_sparse()
    with pytest.raises(ValueError, match="outside of"):
        index_select_rows(x.to_sparse_csr(), torch.tensor([50]))
    with pytest.raises(ValueError, match="to_sparse_csr"):
        index_select_rows(x.to_sparse_coo(), torch.tensor([0]))
    with pytest.raises(ValueError, match="to_sparse_csr"):
        narrow_rows(x.to_sparse_coo(), 2)


def test_sparsify_features():
    x = random_sparse(density=0.05)
    out = sparsify_features(x)
    assert out.layout == torch.sparse_csr
    assert torch.equal(out.to_dense(), x)
    dense = torch.randn(10, 10)
    assert sparsify_features(dense) is dense
    assert sparsify_features(x, max_density=0.0) is x
    with pytest.raises(ValueError, match="'max_density'"):
        sparsify_features(x, max_density=2.0)


@pytest.mark.parametrize('index_dtype', [torch.int64, torch.int32])
def test_transpose_csr(index_dtype):
    adj = csr_adj_t(torch.randint(40, (2, 200)), 40, torch.rand(200))
    adj = index_select_rows(adj, torch.arange(25))  # Bipartite [25, 40].
    adj = torch.sparse_csr_tensor(adj.crow_indices().to(index_dtype),
                                  adj.col_indices().to(index_dtype),
                                  adj.values(), size=adj.shape)
    out = transpose_csr(adj)
    assert out.layout == torch.sparse_csr and out.shape == (40, 25)
    assert torch.equal(out.to_dense(), adj.to_dense().transpose(0, 1))
    assert transpose_csr(adj) is out  # Cached for the matrix.
    assert csr_cache(adj).transpose is out


def test_csr_cache_is_typed_weak_and_sets_nothing_on_tensors():
    import gc
    from torch_autoscale.utils.sparse import _CACHES
    adj = csr_adj_t(torch.randint(40, (2, 200)), 40, torch.rand(200))
    out = transpose_csr(adj)
    cache = csr_cache(adj)
    assert isinstance(cache, CSRCache) and cache.transpose is out
    assert isinstance(cache.structure, CSRTranspose)
    assert cache.source is None and cache.owner is cache
    assert vars(adj) == {} and vars(out) == {}  # No attribute on a tensor.
    # Matrices derived by 'with_values', also from one another, share the
    # structure of the transpose, not the transpose.
    a = with_values(adj, 2 * adj.values())
    b = with_values(a, 3 * adj.values())
    assert csr_cache(a).owner is cache and csr_cache(b).owner is cache
    assert torch.allclose(transpose_csr(b).to_dense(), 3 * out.to_dense())
    assert csr_cache(b).transpose_structure(b) is cache.structure
    # An equal matrix in another tensor has a cache of its own.
    assert csr_cache(adj.clone()) is not cache
    # A cache lives as long as its matrix.
    size = len(_CACHES)
    del a, b
    gc.collect()
    assert len(_CACHES) == size - 2
    del adj
    gc.collect()
    assert len(_CACHES) == size - 3
    with pytest.raises(ValueError, match=r"^'x' must be a torch.sparse_csr "
                       r"tensor \(got Tensor with layout torch.strided\)"):
        csr_cache(torch.eye(3))


def test_cache_registry_checks_identity():
    from torch_autoscale.utils.sparse import _CacheRegistry
    registry = _CacheRegistry()
    x, y = torch.eye(3).to_sparse_csr(), torch.eye(3).to_sparse_csr()
    cache = CSRCache()
    registry.set(x, cache)
    assert registry.get(x) is cache and registry.get(y) is None
    # An entry found under the id of another tensor (as after the id of a
    # dead matrix was reused) is not that tensor's.
    registry._entries[id(y)] = registry._entries[id(x)]
    assert registry.get(y) is None
    # The callback of a replaced entry's reference removes nothing.
    old_ref = registry._entries[id(x)][0]
    registry.set(x, CSRCache())
    registry._remove(id(x), old_ref)
    assert registry.get(x) is not None and registry.get(x) is not cache


def test_spmm_caches_one_transpose(monkeypatch):
    from torch_autoscale.utils import sparse as sparse_module
    adj = csr_adj_t(torch.randint(40, (2, 200)), 40, torch.rand(200))
    dense = adj.to_dense()[:25]
    adj = index_select_rows(adj, torch.arange(25))  # Bipartite [25, 40].
    calls = []
    original = sparse_module.transpose_csr

    def counting(adj_t):
        calls.append(csr_cache(adj_t).transpose)
        return original(adj_t)

    monkeypatch.setattr(sparse_module, 'transpose_csr', counting)
    x = torch.randn(40, 6, requires_grad=True)
    h = x
    for _ in range(3):  # Three layers on one adjacency.
        h = sparse_module.spmm(adj, h[:40] if h.size(0) == 40 else
                               torch.cat([h, x[25:]], dim=0))
    grad = torch.randn_like(h)
    (gx, ) = torch.autograd.grad(h, x, grad)

    ref_x = x.detach().clone().requires_grad_()
    ref = ref_x
    for _ in range(3):
        ref = dense @ (ref if ref.size(0) == 40 else torch.cat(
            [ref, ref_x[25:]], dim=0))
    (gr, ) = torch.autograd.grad(ref, ref_x, grad)
    assert torch.allclose(h, ref, atol=1e-5)
    assert torch.allclose(gx, gr, atol=1e-5)
    # One conversion, then the cached transpose:
    assert len(calls) == 3 and calls[0] is None
    assert calls[1] is not None and calls[2] is calls[1]


def test_spmm_without_grad_and_fallback():
    adj = csr_adj_t(torch.randint(20, (2, 60)), 20, torch.rand(60))
    x = torch.randn(20, 3)
    assert torch.allclose(spmm(adj, x), adj.to_dense() @ x, atol=1e-6)
    coo = adj.to_sparse_coo()
    with pytest.warns(UserWarning, match='Converting sparse tensor to CSR'):
        out = spmm(coo, x)  # PyG's fallback, which converts and says so.
    assert torch.allclose(out, adj.to_dense() @ x, atol=1e-6)


def t(*values):
    return torch.tensor(values)


def unchecked_csr(crow, col, value, size):
    return torch.sparse_csr_tensor(crow, col, value, size,
                                   check_invariants=False)


@pytest.mark.parametrize('edge_index,node', [
    ([[0, 1, 5], [1, 2, 0]], 5),  # A source past the last node.
    ([[0, 1, 2], [1, 3, 0]], 3),  # A target past the last node.
    ([[0, -1, 2], [1, 2, 0]], -1),  # A negative node id.
])
def test_csr_adj_t_node_ids(edge_index, node):
    # Used to build a CSR with column 5 in a 3 x 3 matrix (spmm then read
    # out of bounds).
    with pytest.raises(ValueError, match=rf"^'edge_index' contains node "
                       rf"{node} but 'num_nodes' is 3"):
        csr_adj_t(torch.tensor(edge_index), 3)
    with pytest.raises(ValueError, match=rf"'data.edge_index' contains node "
                       rf"{node} but 'data.num_nodes' is 3"):
        to_csr(Data(edge_index=torch.tensor(edge_index), num_nodes=3))


@pytest.mark.parametrize('num_nodes', [2.5, -1, True, '3', None])
def test_csr_adj_t_num_nodes(num_nodes):
    with pytest.raises(ValueError, match=r"^'num_nodes' must be a "
                       r"non-negative int"):
        csr_adj_t(torch.tensor([[0, 1], [1, 0]]), num_nodes)


def test_csr_adj_t_edge_index_errors():
    with pytest.raises(ValueError, match=r"'edge_index' must hold integer"):
        csr_adj_t(torch.tensor([[0., 1.], [1., 0.]]), 2)
    with pytest.raises(ValueError, match=r"'edge_index' must hold integer"):
        csr_adj_t(torch.tensor([[True], [False]]), 2)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape"):
        csr_adj_t(torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"'edge_index' must be a tensor"):
        csr_adj_t([[0, 1], [1, 0]], 2)
    # No nodes, no edges: a 0 x 0 matrix; numpy and tensor ints work.
    import numpy as np
    assert csr_adj_t(torch.zeros(2, 0, dtype=torch.long), 0).shape == (0, 0)
    adj = csr_adj_t(torch.tensor([[0, 1], [1, 0]], dtype=torch.int32),
                    np.int64(2))
    assert adj.to_dense().tolist() == [[0., 1.], [1., 0.]]


def test_with_values_errors():
    x = torch.eye(3).to_sparse_csr()
    with pytest.raises(ValueError, match=r"^'value' must hold one entry per "
                       r"stored entry of 'x' \(3\) along its first dimension "
                       r"\(got \[5\]\)"):
        with_values(x, torch.ones(5))
    with pytest.raises(ValueError, match=r"'value' must hold one entry"):
        with_values(x, torch.tensor(1.))
    with pytest.raises(ValueError, match=r"^'x' must be a torch.sparse_csr "
                       r"tensor"):
        with_values(torch.eye(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"'value' must be on the device"):
        with_values(x, torch.ones(3, device='meta'))
    out = with_values(x, torch.full((3, ), 2.))
    assert torch.equal(out.to_dense(), 2 * torch.eye(3))


def test_narrow_rows_clamps_like_dense():
    x = torch.eye(4)
    for num_rows in (4, 10):
        out = narrow_rows(x.to_sparse_csr(), num_rows)
        assert out.shape == (4, 4) == narrow_rows(x, num_rows).shape
        assert torch.equal(out.to_dense(), x)
    for sparse in (False, True):
        y = x.to_sparse_csr() if sparse else x
        for bad in (-1, 2.5, True):
            with pytest.raises(ValueError, match=r"^'num_rows' must be a "
                               r"non-negative int"):
                narrow_rows(y, bad)


@pytest.mark.parametrize('sparse', [False, True])
def test_index_select_rows_same_errors(sparse):
    x = random_sparse(num_rows=10, num_cols=3)[:4]
    x = x.to_sparse_csr() if sparse else x
    for index in (t(True, False), t(0., 1.), t(0, 1).int(), t([0, 1])):
        with pytest.raises(ValueError, match=r"^'index' must be a "
                           r"one-dimensional int64 tensor"):
            index_select_rows(x, index)
    with pytest.raises(ValueError, match=r"^'index' holds row -1 outside of "
                       r"\[0, 4\), the rows of 'x'$"):
        index_select_rows(x, t(0, -1))
    with pytest.raises(ValueError, match=r"^'index' holds row 4 outside of"):
        index_select_rows(x, t(4, 0))


def test_transpose_csr_malformed():
    # A row pointer longer than rows + 1:
    adj = unchecked_csr(t(0, 1, 2, 3, 3), t(0, 1, 2), torch.ones(3), (2, 3))
    with pytest.raises(ValueError, match=r"^'adj_t' is not a valid CSR "
                       r"matrix: its row pointer has 5 entries but its 2 "
                       r"rows need 3"):
        transpose_csr(adj)
    # Fewer values than entries (used to be an IndexError):
    adj = unchecked_csr(t(0, 1, 3), t(0, 1, 2), torch.ones(2), (2, 3))
    with pytest.raises(ValueError, match=r"^'adj_t' is not a valid CSR "
                       r"matrix: it has 2 values but 3 column indices"):
        transpose_csr(adj)
    with pytest.raises(ValueError, match=r"^'adj_t' must be a "
                       r"torch.sparse_csr tensor"):
        transpose_csr(torch.eye(3))


@pytest.mark.parametrize('crow,col,match', [
    ((1, 2, 3, 3), (0, 1, 2), r"row pointer must run from 0 to the number "
     r"of entries \(3\), got 1 to 3"),
    ((0, 2, 1, 3), (0, 1, 2), r"row pointer must be non-decreasing, but row "
     r"1 spans \[2, 1\)"),
    ((0, 1, 2, 2), (0, 1, 2), r"row pointer must run from 0 to the number "
     r"of entries \(3\), got 0 to 2"),
    ((0, 1, 2, 3), (0, 1, 3), r"contains column 3 but has 3 columns"),
    ((0, 1, 2, 3), (0, -1, 2), r"contains column -1 but has 3 columns"),
])
def test_to_csr_validates_adj_t(crow, col, match):
    adj_t = unchecked_csr(t(*crow), t(*col), torch.ones(3), (3, 3))
    data = Data(adj_t=adj_t, num_nodes=3)
    with pytest.raises(ValueError, match=r"^'data.adj_t' is not a valid CSR "
                       r"matrix: it.*" + match):
        to_csr(data)


def test_to_csr_adj_t_shape():
    data = Data(adj_t=torch.eye(3).to_sparse_csr(), num_nodes=4)
    with pytest.raises(ValueError, match=r"'data.adj_t' must have shape "
                       r"\[num_nodes, num_nodes\] = \[4, 4\]"):
        to_csr(data)


def test_eval_loader_rejects_adj_t_not_starting_at_zero():
    # With crow (1, 2, 3, 3), edge 0 used to be dropped without a word.
    from torch_autoscale.loader import EvalSubgraphLoader
    adj_t = unchecked_csr(t(1, 2, 3, 3), t(0, 1, 2), torch.ones(3), (3, 3))
    data = Data(x=torch.randn(3, 2), adj_t=adj_t, num_nodes=3)
    with pytest.raises(ValueError, match=r"'data.adj_t' is not a valid CSR "
                       r"matrix: its row pointer must run from 0"):
        EvalSubgraphLoader(data, t(0, 2, 3))
