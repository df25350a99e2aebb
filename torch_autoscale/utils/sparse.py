import functools
import operator
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale import ops
from torch_autoscale.utils.checks import out_of_range


def _check_count(v: Any, name: str) -> int:
    r"""Returns :obj:`v` as a non-negative :obj:`int` (anything with
    :meth:`__index__` but a :obj:`bool`); :class:`ValueError` otherwise."""
    try:
        if isinstance(v, bool):
            raise TypeError
        out = operator.index(v)
    except TypeError:
        raise ValueError(f"'{name}' must be a non-negative int (got "
                         f"{type(v).__name__} {v!r})") from None
    if out < 0:
        raise ValueError(f"'{name}' must be a non-negative int (got {out})")
    return out


def _check_edge_index(edge_index: Any, num_nodes: int, name: str,
                      num_nodes_name: str) -> None:
    r"""Checks that :obj:`edge_index` is an integer tensor of shape
    :obj:`[2, num_edges]` whose node ids lie in :obj:`[0, num_nodes)`."""
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"'{name}' must be a tensor (got "
                         f"{type(edge_index).__name__})")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'{name}' must have shape [2, num_edges] "
                         f"(got {tuple(edge_index.size())})")
    if edge_index.dtype == torch.bool or edge_index.is_floating_point() or \
            edge_index.is_complex():
        raise ValueError(f"'{name}' must hold integer node ids (got dtype "
                         f"{edge_index.dtype})")
    bad = out_of_range(edge_index, num_nodes)
    if bad is not None:
        raise ValueError(f"'{name}' contains node {bad} but "
                         f"'{num_nodes_name}' is {num_nodes}: node ids must "
                         f"lie in [0, {num_nodes})")


def _edge_index_to_csr(
        edge_index: Tensor,
        num_nodes: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The CSR structure (rows are targets) of a checked
    :obj:`edge_index`, and the edge of every CSR position."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    perm = (dst * num_nodes + src).argsort()
    col = src[perm]
    count = torch.bincount(dst, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=rowptr[1:])
    return rowptr, col, perm


def _check_csr_layout(x: Any, name: str) -> None:
    r"""Checks, without reading any index, that :obj:`x` is a
    two-dimensional :obj:`torch.sparse_csr` matrix whose row pointer has one
    entry per row plus one and whose values have one entry per column index
    (a tensor built with :obj:`check_invariants=False` may not)."""
    if not isinstance(x, Tensor) or x.layout != torch.sparse_csr:
        raise ValueError(
            f"'{name}' must be a torch.sparse_csr tensor (got "
            f"{type(x).__name__} with layout {getattr(x, 'layout', None)}); "
            f"convert it with '.to_sparse_csr()'")
    crow, col = x.crow_indices(), x.col_indices()
    if crow.dim() != 1 or x.dim() < 2:
        raise ValueError(f"'{name}' must be a two-dimensional (not batched) "
                         f"sparse CSR matrix (got shape {list(x.shape)})")
    if crow.numel() != x.size(0) + 1:
        raise ValueError(f"'{name}' is not a valid CSR matrix: its row "
                         f"pointer has {crow.numel()} entries but its "
                         f"{x.size(0)} rows need {x.size(0) + 1}")
    if x.values().size(0) != col.numel():
        raise ValueError(f"'{name}' is not a valid CSR matrix: it has "
                         f"{x.values().size(0)} values but {col.numel()} "
                         f"column indices")


def _check_csr(x: Any, name: str) -> None:
    r"""Checks every index of the :obj:`torch.sparse_csr` matrix :obj:`x`:
    its row pointer runs non-decreasing from 0 to the number of entries and
    its columns lie in range (what :obj:`check_invariants=True` would
    check), in a few vectorized reductions."""
    _check_csr_layout(x, name)
    crow, col = x.crow_indices(), x.col_indices()
    first, last = int(crow[0]), int(crow[-1])
    if first != 0 or last != col.numel():
        raise ValueError(f"'{name}' is not a valid CSR matrix: its row "
                         f"pointer must run from 0 to the number of entries "
                         f"({col.numel()}), got {first} to {last}")
    if crow.numel() > 1:
        diff = crow.diff()
        if bool((diff < 0).any()):
            r = int((diff < 0).nonzero()[0, 0])
            raise ValueError(f"'{name}' is not a valid CSR matrix: its row "
                             f"pointer must be non-decreasing, but row {r} "
                             f"spans [{int(crow[r])}, {int(crow[r + 1])})")
    if col.numel() > 0:
        low, high = int(col.min()), int(col.max())
        if low < 0 or high >= x.size(1):
            bad = low if low < 0 else high
            raise ValueError(f"'{name}' is not a valid CSR matrix: it "
                             f"contains column {bad} but has {x.size(1)} "
                             f"columns")


def to_csr(data: Data) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    r"""Returns the adjacency of :obj:`data` in compressed sparse row form
    with rows as target nodes (the :obj:`adj_t` convention of PyG).

    Uses :obj:`data.adj_t` (a :obj:`torch.sparse_csr` tensor) when present,
    and :obj:`data.edge_index` (source, target) otherwise. Either is
    validated here, once, since the loaders index with it on every
    mini-batch: :obj:`data.adj_t` must be a valid
    :obj:`[num_nodes, num_nodes]` CSR matrix (row pointer non-decreasing
    from 0 to the number of entries, columns in range), and
    :obj:`data.edge_index` must hold integer node ids in
    :obj:`[0, num_nodes)`.

    Args:
        data (torch_geometric.data.Data): The graph.

    Returns:
        :obj:`(rowptr, col, value, edge_perm)`: the CSR structure, its values
        (:obj:`None` without :obj:`adj_t` values) and, for every CSR
        position, the index of the edge in :obj:`data.edge_index` it came from
        (:obj:`None` when :obj:`adj_t` is given: the identity, not
        materialized, as the graph may be memory-mapped and large).

    Raises:
        ValueError: If :obj:`data` has no nodes or no connectivity, or its
            :obj:`adj_t` or :obj:`edge_index` is malformed.
    """
    num_nodes = data.num_nodes
    if num_nodes is None or num_nodes == 0:
        raise ValueError("'data' is an empty graph (no nodes); nothing to "
                         "load")
    adj_t = getattr(data, 'adj_t', None)
    if adj_t is not None:
        if not isinstance(adj_t, Tensor) or adj_t.layout != torch.sparse_csr:
            raise ValueError(
                f"'data.adj_t' must be a torch.sparse_csr tensor (got "
                f"{type(adj_t).__name__} with layout "
                f"{getattr(adj_t, 'layout', None)}); build one with "
                f"torch_autoscale.utils.csr_adj_t(edge_index, num_nodes)")
        _check_csr(adj_t, 'data.adj_t')
        if tuple(adj_t.shape[:2]) != (num_nodes, num_nodes):
            raise ValueError(f"'data.adj_t' must have shape [num_nodes, "
                             f"num_nodes] = [{num_nodes}, {num_nodes}] (got "
                             f"{list(adj_t.shape)})")
        rowptr = adj_t.crow_indices().long()
        col = adj_t.col_indices().long()
        value = adj_t.values()
        return rowptr, col, value, None

    edge_index = getattr(data, 'edge_index', None)
    if edge_index is None:
        raise ValueError("'data' has neither 'adj_t' nor 'edge_index'")
    _check_edge_index(edge_index, num_nodes, 'data.edge_index',
                      'data.num_nodes')
    rowptr, col, perm = _edge_index_to_csr(edge_index, num_nodes)
    return rowptr, col, None, perm


def csr_adj_t(edge_index: Tensor, num_nodes: int,
              edge_weight: Optional[Tensor] = None) -> Tensor:
    r"""Builds the transposed adjacency :obj:`adj_t` (rows are target nodes)
    as a :obj:`torch.sparse_csr` tensor, the fast format of the hot path:
    PyG's convolutions accept it directly.

    Args:
        edge_index (torch.Tensor): Edges as (source, target) pairs, an
            integer tensor of shape :obj:`[2, num_edges]` with node ids in
            :obj:`[0, num_nodes)`.
        num_nodes (int): The number of nodes, a non-negative int.
        edge_weight (torch.Tensor, optional): One weight per edge.
            (default: :obj:`None`, all ones)

    Raises:
        ValueError: If :obj:`num_nodes` is not a non-negative int, or
            :obj:`edge_index` is malformed or holds a node id outside of
            :obj:`[0, num_nodes)`.
    """
    num_nodes = _check_count(num_nodes, 'num_nodes')
    _check_edge_index(edge_index, num_nodes, 'edge_index', 'num_nodes')
    rowptr, col, perm = _edge_index_to_csr(edge_index, num_nodes)
    if edge_weight is None:
        value = torch.ones(col.numel())
    else:
        if edge_weight.numel() != edge_index.size(1):
            raise ValueError(f"'edge_weight' has {edge_weight.numel()} "
                             f"entries but there are {edge_index.size(1)} "
                             f"edges")
        value = edge_weight[perm]
    return sparse_csr(rowptr, col, value, (num_nodes, num_nodes))


def row_blocks(rowptr: Tensor,
               chunk_edges: int) -> Iterator[Tuple[int, int]]:
    r"""Ranges of rows :obj:`[r0, r1)` of the CSR :obj:`rowptr` holding
    about :obj:`chunk_edges` entries and at most :obj:`chunk_edges` rows
    each (a longer row is a block of its own)."""
    num_rows = rowptr.numel() - 1
    r0 = 0
    while r0 < num_rows:
        limit = int(rowptr[r0]) + chunk_edges
        r1 = int(torch.searchsorted(rowptr, limit, right=True)) - 1
        r1 = min(num_rows, max(r1, r0 + 1), r0 + chunk_edges)
        yield r0, r1
        r0 = r1


def sparse_csr(rowptr: Tensor, col: Tensor, value: Tensor,
               size: Tuple[int, int]) -> Tensor:
    r"""Wraps CSR arrays in a :obj:`torch.sparse_csr` tensor without
    copying or validating them (they come from the library's own kernels),
    silencing PyTorch's beta-state warning for the layout."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', '.*Sparse CSR tensor support.*')
        return torch.sparse_csr_tensor(rowptr, col, value, size=size,
                                       check_invariants=False)


def _check_rows_input(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.layout not in (torch.strided,
                                                     torch.sparse_csr):
        raise ValueError(
            f"'{name}' must be a dense or torch.sparse_csr tensor (got "
            f"{type(x).__name__} with layout {getattr(x, 'layout', None)}); "
            f"convert sparse features with '.to_sparse_csr()'")


def index_select_rows(x: Tensor, index: Tensor) -> Tensor:
    r"""Returns the rows :obj:`index` of :obj:`x`, for dense and for
    :obj:`torch.sparse_csr` matrices (PyTorch has no :obj:`index_select` for
    the compressed layout). Lets node features stay sparse through
    :func:`~torch_autoscale.partition.permute` and the loaders.

    Args:
        x (torch.Tensor): A dense tensor or a two-dimensional
            :obj:`torch.sparse_csr` matrix.
        index (torch.Tensor): The row indices, a one-dimensional int64
            tensor with entries in :obj:`[0, x.size(0))`.

    Raises:
        ValueError: If :obj:`index` is not a one-dimensional int64 tensor or
            holds a row outside of :obj:`x` (for either layout).
    """
    _check_rows_input(x, 'x')
    if not isinstance(index, Tensor) or index.dtype != torch.int64 or \
            index.dim() != 1:
        got = (f"dtype {index.dtype} and {index.dim()} dimensions"
               if isinstance(index, Tensor) else type(index).__name__)
        raise ValueError(f"'index' must be a one-dimensional int64 tensor "
                         f"(got {got})")
    if x.layout == torch.sparse_csr:
        _check_csr_layout(x, 'x')
    elif x.dim() == 0:
        raise ValueError("'x' must have at least one dimension")
    index = index.to(x.device)
    if index.numel() > 0:
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= x.size(0):
            bad = low if low < 0 else high
            raise ValueError(f"'index' holds row {bad} outside of "
                             f"[0, {x.size(0)}), the rows of 'x'")
    if x.layout == torch.strided:
        return x.index_select(0, index)
    crow, col, value = x.crow_indices(), x.col_indices(), x.values()
    start = crow[index]
    count = crow[index + 1] - start
    out_crow = torch.zeros(index.numel() + 1, dtype=crow.dtype,
                           device=crow.device)
    torch.cumsum(count, 0, out=out_crow[1:])
    nnz = int(out_crow[-1])
    # Entry k of output row i sits at crow[index[i]] + (k - out_crow[i]).
    shift = torch.repeat_interleave(out_crow[:-1] - start, count,
                                    output_size=nnz)
    pos = torch.arange(nnz, dtype=crow.dtype, device=crow.device) - shift
    return sparse_csr(out_crow, col[pos], value[pos],
                      (index.numel(), x.size(1)))


def narrow_rows(x: Tensor, num_rows: int) -> Tensor:
    r"""Returns the first :obj:`num_rows` rows of :obj:`x` (dense or
    :obj:`torch.sparse_csr`) without copying; all of them if :obj:`x` has
    fewer, for both layouts (as slicing a dense tensor does).

    Args:
        x (torch.Tensor): A dense tensor or a two-dimensional
            :obj:`torch.sparse_csr` matrix.
        num_rows (int): The number of rows to keep, a non-negative int.

    Raises:
        ValueError: If :obj:`num_rows` is not a non-negative int.
    """
    _check_rows_input(x, 'x')
    num_rows = _check_count(num_rows, 'num_rows')
    if x.layout == torch.strided:
        return x[:num_rows]
    _check_csr_layout(x, 'x')
    num_rows = min(num_rows, x.size(0))
    crow = x.crow_indices()[:num_rows + 1]
    end = int(crow[-1])
    return sparse_csr(crow, x.col_indices()[:end], x.values()[:end],
                      (num_rows, x.size(1)))


def sparsify_features(x: Tensor, max_density: float = 0.1) -> Tensor:
    r"""Returns node features :obj:`x` as a :obj:`torch.sparse_csr` matrix if
    at most :obj:`max_density` of its entries are non-zero (bag-of-words
    features), and unchanged otherwise. Models that accept sparse features
    (:attr:`~torch_autoscale.nn.ScalableGNN.supports_sparse_input`) then
    spend time in proportion to the non-zeros on them.

    Args:
        x (torch.Tensor): Dense node features of shape :obj:`[N, F]`.
        max_density (float, optional): The largest fraction of non-zeros
            that is converted. (default: :obj:`0.1`)
    """
    if not 0.0 <= max_density <= 1.0:
        raise ValueError(f"'max_density' must lie in [0, 1] (got "
                         f"{max_density})")
    if x.layout != torch.strided or x.dim() != 2 or x.numel() == 0:
        return x
    if int(torch.count_nonzero(x)) <= max_density * x.numel():
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', '.*Sparse CSR tensor support.*')
            return x.to_sparse_csr()
    return x


def _transpose_structure(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The row pointer, column indices and value permutation of the
    transpose of the CPU :obj:`torch.sparse_csr` matrix :obj:`x`
    (:func:`torch_autoscale.ops.csr_transpose`), computed afresh: the
    :class:`CSRCache` of :obj:`x` calls it once per structure."""
    return ops.csr_transpose(x.crow_indices().long(), x.col_indices().long(),
                             x.size(1))


@dataclass(frozen=True)
class CSRTranspose:
    r"""The structure of the transpose of a :obj:`torch.sparse_csr` matrix
    :obj:`x` of shape :obj:`[M, N]`, again in CSR form: the transpose of
    :obj:`x` is the CSR matrix :obj:`(rowptr, col, x.values()[perm])` of
    shape :obj:`[N, M]`, for :obj:`x` and for every matrix with the
    structure of :obj:`x` (see :func:`with_values`).

    Args:
        rowptr (torch.Tensor): The row pointer of the transpose, with
            :obj:`N + 1` int64 entries.
        col (torch.Tensor): The int64 column index (a row of :obj:`x`) of
            every entry of the transpose.
        perm (torch.Tensor): For every entry of the transpose, the position
            of its value in :obj:`x.values()`.
    """
    rowptr: Tensor
    col: Tensor
    perm: Tensor


@dataclass(eq=False)
class CSRCache:
    r"""What the library caches for one :obj:`torch.sparse_csr` matrix: the
    structure of its transpose (:class:`CSRTranspose`), built once, on first
    use, and shared by the matrices :func:`with_values` derives from it; and
    its transpose, values included (:func:`transpose_csr`).

    PyG keeps such caches in a typed tensor (its :obj:`EdgeIndex`); PyG's
    convolutions take :obj:`torch.sparse_csr` adjacencies and features as
    they are, so instead the library keeps one :class:`CSRCache` per matrix
    object in a registry weakly keyed by the matrix (:func:`csr_cache`).
    Nothing is set on the tensor, and a cache lives exactly as long as its
    matrix: it holds no reference to it.

    Args:
        source (CSRCache, optional): The cache of the matrix whose structure
            this matrix has, which holds the transpose structure for both.
            (default: :obj:`None`, the matrix holds its own)
        structure (CSRTranspose, optional): The structure of the transpose,
            where this cache holds it. (default: :obj:`None`, not built yet)
        transpose (torch.Tensor, optional): The transpose of the matrix.
            (default: :obj:`None`, not built yet)
    """
    source: Optional['CSRCache'] = None
    structure: Optional[CSRTranspose] = field(default=None, repr=False)
    transpose: Optional[Tensor] = field(default=None, repr=False)

    @property
    def owner(self) -> 'CSRCache':
        r"""The cache that holds the transpose structure of this matrix: the
        one of the matrix it shares the structure with, or itself."""
        return self if self.source is None else self.source

    def transpose_structure(self, x: Tensor) -> CSRTranspose:
        r"""The structure of the transpose of the matrix, computed from
        :obj:`x` on the first call for this structure (a counting sort,
        linear in the entries, :func:`torch_autoscale.ops.csr_transpose`),
        then cached.

        Args:
            x (torch.Tensor): The CPU :obj:`torch.sparse_csr` matrix this
                cache belongs to, or one with its structure.
        """
        owner = self.owner
        if owner.structure is None:
            owner.structure = CSRTranspose(*_transpose_structure(x))
        return owner.structure


class _CacheRegistry:
    r"""The :class:`CSRCache` of every matrix that has one, keyed by the
    identity of the matrix and weakly: an entry goes with its matrix.

    A dictionary from :obj:`id(x)` to a weak reference to :obj:`x` and its
    cache, which the reference's callback removes when :obj:`x` dies (before
    its :obj:`id` can be reused). A lookup is one dictionary access and one
    dereference, a fraction of a microsecond; a
    :class:`torch.utils.weak.WeakIdKeyDictionary` builds a new reference
    per lookup, ten times slower, on the path of every backward pass
    through a cached transpose."""
    def __init__(self) -> None:
        self._entries: Dict[int, Tuple[weakref.ref, CSRCache]] = {}

    def get(self, x: Tensor) -> Optional[CSRCache]:
        entry = self._entries.get(id(x))
        if entry is not None and entry[0]() is x:
            return entry[1]
        return None

    def set(self, x: Tensor, cache: CSRCache) -> None:
        key = id(x)
        ref = weakref.ref(x, functools.partial(self._remove, key))
        self._entries[key] = (ref, cache)

    def _remove(self, key: int, ref: weakref.ref) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is ref:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


_CACHES = _CacheRegistry()


def csr_cache(x: Tensor) -> CSRCache:
    r"""The :class:`CSRCache` of the :obj:`torch.sparse_csr` matrix
    :obj:`x`, created empty on the first call for :obj:`x` and returned for
    the same tensor object afterwards.

    The caches live in a registry weakly keyed by the identity of the
    tensor: a cache lives as long as its matrix and no longer, and an equal
    matrix in another tensor object has a cache of its own.

    Args:
        x (torch.Tensor): A :obj:`torch.sparse_csr` matrix.

    Raises:
        ValueError: If :obj:`x` is not a :obj:`torch.sparse_csr` tensor.
    """
    if not isinstance(x, Tensor) or x.layout != torch.sparse_csr:
        raise ValueError(
            f"'x' must be a torch.sparse_csr tensor (got "
            f"{type(x).__name__} with layout {getattr(x, 'layout', None)}); "
            f"convert it with '.to_sparse_csr()'")
    return _cache_of(x)


def _cache_of(x: Tensor) -> CSRCache:
    # csr_cache without the check of its argument.
    cache = _CACHES.get(x)
    if cache is None:
        cache = CSRCache()
        _CACHES.set(x, cache)
    return cache


def with_values(x: Tensor, value: Tensor) -> Tensor:
    r"""The :obj:`torch.sparse_csr` matrix with the structure of :obj:`x`
    and the values :obj:`value`, whose transpose (see :func:`transpose_csr`)
    reuses the structure of :obj:`x`'s (their :class:`CSRCache` objects
    share one :class:`CSRTranspose`): dropout on sparse features keeps the
    structure, so full-batch training transposes its features once, not
    every step. Nothing is computed until a transpose is needed.

    Args:
        x (torch.Tensor): A :obj:`torch.sparse_csr` matrix.
        value (torch.Tensor): The new values, one per stored entry of
            :obj:`x` along the first dimension, on the device of :obj:`x`.

    Raises:
        ValueError: If :obj:`x` is not a :obj:`torch.sparse_csr` matrix or
            :obj:`value` does not hold one entry per stored entry of it.
    """
    _check_csr_layout(x, 'x')
    nnz = x.col_indices().numel()
    if not isinstance(value, Tensor) or value.dim() < 1 or \
            value.size(0) != nnz:
        shape = list(value.shape) if isinstance(value, Tensor) else \
            type(value).__name__
        raise ValueError(f"'value' must hold one entry per stored entry of "
                         f"'x' ({nnz}) along its first dimension (got "
                         f"{shape})")
    if value.device != x.device:
        raise ValueError(f"'value' must be on the device of 'x' ({x.device}, "
                         f"got {value.device})")
    out = sparse_csr(x.crow_indices(), x.col_indices(), value, x.size())
    _CACHES.set(out, CSRCache(source=_cache_of(x).owner))
    return out


def transpose_csr(adj_t: Tensor) -> Tensor:
    r"""The transpose of a :obj:`torch.sparse_csr` matrix, again in CSR
    form, computed once per matrix object and kept in its
    :class:`CSRCache` (see :func:`csr_cache`).

    The backward pass of a sparse-dense product multiplies with the
    transpose; PyTorch converts it afresh (a sort over all entries) in every
    layer, every step. Deep models on one mini-batch (APPNP's ten steps,
    GCNII's 64 layers) share one adjacency, so one conversion serves them
    all. On the CPU the transpose is a counting sort, linear in the entries
    (:func:`torch_autoscale.ops.csr_transpose`), whose structure matrices
    made by :func:`with_values` share.

    Args:
        adj_t (torch.Tensor): A two-dimensional :obj:`torch.sparse_csr`
            matrix.

    Raises:
        ValueError: If :obj:`adj_t` is not a valid :obj:`torch.sparse_csr`
            matrix (also one built with :obj:`check_invariants=False`).
    """
    cache = _CACHES.get(adj_t) if isinstance(adj_t, Tensor) else None
    if cache is not None and cache.transpose is not None:
        return cache.transpose
    _check_csr_layout(adj_t, 'adj_t')
    cache = _cache_of(adj_t)
    mat = adj_t.detach() if adj_t.requires_grad else adj_t
    if mat.device.type == 'cpu':
        structure = cache.transpose_structure(adj_t)
        out = sparse_csr(structure.rowptr, structure.col,
                         mat.values()[structure.perm],
                         (mat.size(1), mat.size(0)))
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore',
                                    '.*Sparse CSR tensor support.*')
            out = mat.t().to_sparse_csr()
    cache.transpose = out
    return out


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor,
                bias: Optional[Tensor]) -> Tensor:
        ctx.x, ctx.has_bias = x, bias is not None
        out = torch.sparse.mm(x, weight.t())
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = torch.sparse.mm(transpose_csr(ctx.x), grad).t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return None, grad_weight, grad_bias


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    r""":func:`torch.nn.functional.linear` whose backward pass, for
    :obj:`torch.sparse_csr` features :obj:`x`, multiplies with the cached
    transpose of :obj:`x` (:func:`transpose_csr`) instead of converting it
    afresh every step (full-batch APPNP epochs on Coauthor-CS 1.9x faster,
    ``benchmark/results/small_transpose.md``). Gradients flow to
    :obj:`weight` and :obj:`bias`, not to sparse :obj:`x`; dense :obj:`x`
    goes to :func:`torch.nn.functional.linear`.

    Args:
        x (torch.Tensor): Features of shape :obj:`[N, in_channels]`, dense
            or :obj:`torch.sparse_csr`.
        weight (torch.Tensor): Weight of shape
            :obj:`[out_channels, in_channels]`.
        bias (torch.Tensor, optional): Bias of shape :obj:`[out_channels]`.
            (default: :obj:`None`)
    """
    if (x.layout == torch.sparse_csr and x.dim() == 2 and not x.requires_grad
            and torch.is_grad_enabled()
            and (weight.requires_grad or
                 (bias is not None and bias.requires_grad))):
        return _SparseLinear.apply(x, weight, bias)
    return torch.nn.functional.linear(x, weight, bias)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj_t, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, torch.sparse.mm(transpose_csr(ctx.adj_t), grad)


def spmm(adj_t: Tensor, x: Tensor) -> Tensor:
    r"""The product :obj:`adj_t @ x` of a sparse adjacency and dense
    features (sum aggregation), whose backward pass reuses one cached
    transpose of :obj:`adj_t` (see :func:`transpose_csr`). Gradients flow to
    :obj:`x` only; other layouts fall back to
    :func:`torch_geometric.utils.spmm`.

    Args:
        adj_t (torch.Tensor): A :obj:`torch.sparse_csr` matrix of shape
            :obj:`[M, N]`.
        x (torch.Tensor): Dense features of shape :obj:`[N, F]`.
    """
    if (not isinstance(adj_t, Tensor) or adj_t.layout != torch.sparse_csr
            or adj_t.requires_grad or x.layout != torch.strided):
        from torch_geometric.utils import spmm as pyg_spmm
        return pyg_spmm(adj_t, x, reduce='sum')
    if x.requires_grad and torch.is_grad_enabled():
        return _SpMM.apply(adj_t, x)
    return torch.sparse.mm(adj_t, x)
