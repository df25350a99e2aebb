import faulthandler
import re

import pytest
import torch

import torch_autoscale.typing
from torch_autoscale.ops import (
    csr_transpose,
    csr_transpose_reference,
    read_async,
    relabel_one_hop,
    relabel_one_hop_reference,
    synchronize,
    write_async,
)

WITH_NATIVE = torch_autoscale.typing.WITH_NATIVE
WITH_CUDA = torch.cuda.is_available() and torch_autoscale.typing.WITH_CUDA_OPS

onlyNative = pytest.mark.skipif(not WITH_NATIVE,
                                reason='torch_autoscale._C is not built')
onlyCUDA = pytest.mark.skipif(
    not WITH_CUDA, reason='needs a GPU and the CUDA kernels of the extension')

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(params=['native', 'fallback'])
def backend(request, monkeypatch):
    r"""Runs a test with the native kernels and with the pure-PyTorch
    fallback."""
    if request.param == 'native' and not WITH_NATIVE:
        pytest.skip('torch_autoscale._C is not built')
    if request.param == 'fallback':
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', False)
    return request.param


def errors_of(fn, monkeypatch):
    r"""The :class:`ValueError` messages that :obj:`fn` raises on every
    available backend."""
    messages = []
    for native in ([True, False] if WITH_NATIVE else [False]):
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', native)
        with pytest.raises(ValueError) as info:
            fn()
        messages.append(str(info.value))
    monkeypatch.undo()
    return messages


def assert_same_error(fn, monkeypatch, match):
    messages = errors_of(fn, monkeypatch)
    assert all(m == messages[0] for m in messages), messages
    assert re.search(match, messages[0]), messages[0]


# relabel_one_hop #############################################################


def random_csr(num_nodes, num_edges, seed):
    gen = torch.Generator().manual_seed(seed)
    # Only the first 80% of the nodes have out-edges, and nodes in the last
    # 10% are never a target, so there are isolated nodes of both kinds.
    num_sources = max(1, int(0.8 * num_nodes))
    num_targets = max(1, int(0.9 * num_nodes))
    row = torch.randint(num_sources, (num_edges, ), generator=gen)
    col = torch.randint(num_targets, (num_edges, ), generator=gen)
    row = row.sort(stable=True).values
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(row, minlength=num_nodes).cumsum(0)
    return rowptr, col


def relabel_one_hop_naive(rowptr, col, value, n_id, bipartite):
    pos = {v: i for i, v in enumerate(n_id.tolist())}
    out_n_id, out_rowptr, out_col, e_id = n_id.tolist(), [0], [], []
    for v in n_id.tolist():
        for e in range(int(rowptr[v]), int(rowptr[v + 1])):
            w = int(col[e])
            if w not in pos:
                pos[w] = len(out_n_id)
                out_n_id.append(w)
            out_col.append(pos[w])
            e_id.append(e)
        out_rowptr.append(len(out_col))
    if not bipartite:
        out_rowptr += [len(out_col)] * (len(out_n_id) - n_id.numel())
    out_value = value[torch.tensor(e_id, dtype=torch.long)] \
        if value is not None else None
    return (torch.tensor(out_rowptr), torch.tensor(out_col, dtype=torch.long),
            out_value, torch.tensor(out_n_id, dtype=torch.long))


def assert_equal_outputs(out, expected):
    assert len(out) == len(expected) == 4
    for a, b in zip(out, expected):
        if b is None:
            assert a is None
        else:
            assert a.dtype == b.dtype and a.shape == b.shape
            assert torch.equal(a, b)


def test_relabel_one_hop_example(backend):
    # Node 4 has no edges; node 2 is nobody's neighbour.
    rowptr = torch.tensor([0, 2, 3, 5, 6, 6])
    col = torch.tensor([1, 3, 0, 1, 3, 2])
    value = torch.tensor([10., 11., 12., 13., 14., 15.])

    out = relabel_one_hop(rowptr, col, value, torch.tensor([2, 4, 0]))
    assert_equal_outputs(out, (
        torch.tensor([0, 2, 2, 4, 4, 4]),
        torch.tensor([3, 4, 3, 4]),
        torch.tensor([13., 14., 10., 11.]),
        torch.tensor([2, 4, 0, 1, 3]),
    ))

    out = relabel_one_hop(rowptr, col, value, torch.tensor([3, 2]),
                          bipartite=True)
    assert_equal_outputs(out, (
        torch.tensor([0, 1, 3]),
        torch.tensor([1, 2, 0]),
        torch.tensor([15., 13., 14.]),
        torch.tensor([3, 2, 1]),
    ))

    out = relabel_one_hop(rowptr, col, None, torch.tensor([4]))
    assert_equal_outputs(out, (torch.tensor([0, 0]), torch.tensor(
        [], dtype=torch.long), None, torch.tensor([4])))

    empty = torch.tensor([], dtype=torch.long)
    for bipartite in [False, True]:
        out = relabel_one_hop(rowptr, col, value, empty, bipartite)
        assert_equal_outputs(out, (torch.tensor([0]), empty, value[:0], empty))


CONFIGS = [(1, 0), (1, 3), (10, 0), (10, 30), (50, 20), (100, 1000),
           (300, 2000)]


@pytest.mark.parametrize('num_nodes,num_edges', CONFIGS)
@pytest.mark.parametrize('bipartite', [False, True])
def test_relabel_one_hop_reference_matches_naive(num_nodes, num_edges,
                                                 bipartite):
    for seed in range(3):
        rowptr, col = random_csr(num_nodes, num_edges, seed)
        value = torch.randn(num_edges)
        gen = torch.Generator().manual_seed(seed)
        for size in {0, 1, num_nodes // 3, num_nodes}:
            n_id = torch.randperm(num_nodes, generator=gen)[:size]
            assert_equal_outputs(
                relabel_one_hop_reference(rowptr, col, value, n_id,
                                          bipartite),
                relabel_one_hop_naive(rowptr, col, value, n_id, bipartite))


VALUES = {
    'none': lambda num_edges, gen: None,
    'float32': lambda num_edges, gen: torch.randn(num_edges, generator=gen),
    'int64': lambda num_edges, gen: torch.randperm(num_edges, generator=gen),
    'bfloat16': lambda num_edges, gen: torch.randn(
        num_edges, generator=gen).to(torch.bfloat16),
    'float16_2d': lambda num_edges, gen: torch.randn(
        num_edges, 3, generator=gen).half(),
    'bool': lambda num_edges, gen: torch.rand(num_edges, generator=gen) > .5,
}


@pytest.mark.parametrize('num_nodes,num_edges', CONFIGS + [(5000, 50000)])
@pytest.mark.parametrize('bipartite', [False, True])
@pytest.mark.parametrize('value_type', list(VALUES))
def test_relabel_one_hop_random(backend, num_nodes, num_edges, bipartite,
                                value_type):
    for seed in range(3 if num_edges < 10000 else 1):
        gen = torch.Generator().manual_seed(seed)
        rowptr, col = random_csr(num_nodes, num_edges, seed)
        value = VALUES[value_type](num_edges, gen)
        for size in {0, 1, num_nodes // 10, num_nodes // 2, num_nodes}:
            n_id = torch.randperm(num_nodes, generator=gen)[:size]
            out = relabel_one_hop(rowptr, col, value, n_id, bipartite)
            expected = relabel_one_hop_reference(rowptr, col, value, n_id,
                                                 bipartite)
            assert_equal_outputs(out, expected)

            out_rowptr, out_col, _, out_n_id = out
            assert torch.equal(out_n_id[:size], n_id)
            assert out_n_id.unique().numel() == out_n_id.numel()
            num_rows = size if bipartite else out_n_id.numel()
            assert out_rowptr.numel() == num_rows + 1
            # Relabelling back gives the original columns, row by row.
            for i in range(min(size, 5)):
                v = int(n_id[i])
                got = out_n_id[out_col[out_rowptr[i]:out_rowptr[i + 1]]]
                assert torch.equal(got, col[rowptr[v]:rowptr[v + 1]])


def test_relabel_one_hop_small_batch_of_a_large_graph(backend):
    # Batches much smaller than the graph take the hash-map path of the
    # native kernel (no table over all nodes); same result as the
    # reference, and duplicates are still caught.
    num_nodes = 200_000
    rowptr, col = random_csr(num_nodes, 400_000, seed=1)
    gen = torch.Generator().manual_seed(1)
    for size in (1, 7, 300):
        n_id = torch.randperm(num_nodes, generator=gen)[:size]
        for bipartite in (False, True):
            assert_equal_outputs(
                relabel_one_hop(rowptr, col, None, n_id, bipartite),
                relabel_one_hop_reference(rowptr, col, None, n_id,
                                          bipartite))
    n_id = torch.tensor([5, 199_999, 5])
    with pytest.raises(ValueError, match="'n_id' contains node 5 more"):
        relabel_one_hop(rowptr, col, None, n_id)


def test_relabel_one_hop_non_contiguous(backend):
    rowptr, col = random_csr(100, 500, seed=0)
    n_id = torch.randperm(100)[:40]
    value = torch.randn(500, 2)
    out = relabel_one_hop(rowptr, col, value[:, 0], n_id[::2])
    expected = relabel_one_hop_reference(rowptr, col, value[:, 0].clone(),
                                         n_id[::2].clone())
    assert_equal_outputs(out, expected)


RELABEL_ERRORS = {
    'rowptr_dim': (dict(rowptr=torch.tensor([[0, 2, 3, 5, 6]])),
                   r"'rowptr' must be one-dimensional \(got 2 dimensions\)"),
    'col_dtype': (dict(col=torch.tensor([1., 3., 0., 1., 3., 2.])),
                  r"'col' must be an int64 tensor"),
    'n_id_dtype': (dict(n_id=torch.tensor([0, 1], dtype=torch.int32)),
                   r"'n_id' must be an int64 tensor"),
    'rowptr_empty': (dict(rowptr=torch.tensor([], dtype=torch.long)),
                     r"'rowptr' must have at least one entry"),
    'rowptr_end': (dict(rowptr=torch.tensor([0, 2, 3, 5, 5])),
                   r"'rowptr' ends at 5 but 'col' has 6 entries"),
    'value_length': (dict(value=torch.randn(5)),
                     r"'value' must hold one entry per edge along its first "
                     r"dimension \(6\), got shape \[5\]"),
    'value_scalar': (dict(value=torch.tensor(1.)),
                     r"'value' must hold one entry per edge .* got "
                     r"shape \[\]"),
    'n_id_range': (dict(n_id=torch.tensor([0, 4, -1])),
                   r"'n_id' contains node 4 but the graph has 4 nodes"),
    'n_id_negative': (dict(n_id=torch.tensor([0, -1])),
                      r"'n_id' contains node -1 but the graph has 4 nodes"),
    'n_id_duplicate': (dict(n_id=torch.tensor([3, 0, 2, 0, 3])),
                       r"'n_id' contains node 0 more than once"),
    'rowptr_decreasing': (dict(rowptr=torch.tensor([0, 4, 3, 5, 6])),
                          r"'rowptr' is not a valid CSR pointer: row 1 spans "
                          r"\[4, 3\) of 6 edges"),
    'col_range': (dict(col=torch.tensor([1, 3, 0, 1, 7, 2])),
                  r"'col' contains node 7 but the graph has 4 nodes"),
    # Rows 0 and 3 would span [1, 2) and [5, 6): edge 0 silently dropped.
    'rowptr_start': (dict(rowptr=torch.tensor([1, 2, 3, 5, 6])),
                     r"'rowptr' must start at 0 \(got 1\)"),
    'rowptr_negative_start': (dict(rowptr=torch.tensor([-1, 2, 3, 5, 6])),
                              r"'rowptr' must start at 0 \(got -1\)"),
    'bipartite_str': (dict(bipartite='yes'),
                      r"'bipartite' must be a bool \(got str 'yes'\)"),
    'bipartite_int': (dict(bipartite=1),
                      r"'bipartite' must be a bool \(got int 1\)"),
    'rowptr_meta': (dict(rowptr=torch.tensor([0, 2, 3, 5, 6],
                                             device='meta')),
                    r"'rowptr' must be a CPU tensor \(got device meta\)"),
    'n_id_meta': (dict(n_id=torch.empty(2, dtype=torch.long,
                                        device='meta')),
                  r"'n_id' must be a CPU tensor \(got device meta\)"),
    'value_meta': (dict(value=torch.empty(6, device='meta')),
                   r"'value' must be a CPU tensor \(got device meta\)"),
    'col_list': (dict(col=[1, 3, 0, 1, 3, 2]),
                 r"'col' must be a tensor \(got list\)"),
}


@pytest.mark.parametrize('case', list(RELABEL_ERRORS))
def test_relabel_one_hop_errors(case, monkeypatch):
    kwargs = dict(rowptr=torch.tensor([0, 2, 3, 5, 6]),
                  col=torch.tensor([1, 3, 0, 1, 3, 2]), value=None,
                  n_id=torch.tensor([1, 2]))
    update, match = RELABEL_ERRORS[case]
    kwargs.update(update)
    assert_same_error(lambda: relabel_one_hop(**kwargs), monkeypatch,
                      '^relabel_one_hop: ' + match)


@onlyNative
def test_relabel_one_hop_native_checks():
    # Called directly, the operator raises the same ValueError, and it does
    # not make its inputs contiguous.
    rowptr = torch.tensor([0, 2, 3, 5, 6])
    col = torch.tensor([1, 3, 0, 1, 3, 2])
    with pytest.raises(ValueError, match="'n_id' contains node 9"):
        torch.ops.torch_autoscale.relabel_one_hop(rowptr, col, None,
                                                  torch.tensor([9]), False)
    with pytest.raises(ValueError, match="'n_id' must be contiguous"):
        torch.ops.torch_autoscale.relabel_one_hop(rowptr, col, None,
                                                  torch.tensor([0, 1, 2])[::2],
                                                  False)


@onlyNative
@pytest.mark.parametrize('bipartite', [False, True])
def test_relabel_one_hop_opcheck(bipartite):
    # The fake kernel gives data-dependent sizes (unbacked symbols) to the
    # kept edges and the extended node list; opcheck runs it under fake
    # tensors and dynamic-shape AOT tracing against the real kernel.
    rowptr, col = random_csr(30, 100, seed=0)
    op = torch.ops.torch_autoscale.relabel_one_hop.default
    for value in [None, torch.randn(100), torch.randn(100, 4)]:
        for n_id in [torch.randperm(30)[:10], torch.tensor([],
                                                           dtype=torch.long)]:
            torch.library.opcheck(op, (rowptr, col, value, n_id, bipartite))


# csr_transpose ###############################################################


def transpose_by_torch(rowptr, col, num_cols):
    r"""The transpose as PyTorch's own conversion builds it, with every
    entry's position as its value."""
    num_rows = rowptr.numel() - 1
    adj = torch.sparse_csr_tensor(rowptr, col, torch.arange(col.numel()),
                                  size=(num_rows, num_cols))
    out = adj.t().to_sparse_csr()
    return out.crow_indices(), out.col_indices(), out.values()


def test_csr_transpose_example(backend):
    # [[1, 0, 1],
    #  [0, 0, 1]]: column 1 is empty.
    rowptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 2, 2])
    out_rowptr, out_col, perm = csr_transpose(rowptr, col, 3)
    assert out_rowptr.tolist() == [0, 1, 1, 3]
    assert out_col.tolist() == [0, 0, 1]
    assert perm.tolist() == [0, 1, 2]


@pytest.mark.parametrize('num_rows,num_cols,num_entries',
                         [(1, 1, 0), (7, 3, 20), (50, 200, 300),
                          (2000, 3000, 40000)])
def test_csr_transpose_matches_torch(backend, num_rows, num_cols,
                                     num_entries):
    gen = torch.Generator().manual_seed(num_entries)
    # Rows in order, columns in arbitrary order within a row; some rows and
    # columns stay empty.
    row = torch.randint(max(1, num_rows - 1), (num_entries, ),
                        generator=gen).sort().values
    col = torch.randint(max(1, num_cols - 1), (num_entries, ), generator=gen)
    rowptr = torch.zeros(num_rows + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(row, minlength=num_rows).cumsum(0)

    # With duplicate entries, the order among them is the stable one: the
    # reference's.
    out = csr_transpose(rowptr, col, num_cols)
    for actual, expected in zip(out, csr_transpose_reference(rowptr, col,
                                                             num_cols)):
        assert torch.equal(actual, expected)
    # Without duplicates, the result is PyTorch's conversion.
    key = row * num_cols + col
    keep = torch.ones_like(key, dtype=torch.bool)
    keep[1:] = key.sort(stable=True).values.diff() != 0
    first = torch.zeros_like(keep)
    first[key.sort(stable=True).indices[keep]] = True
    row, col = row[first], col[first]
    rowptr[1:] = torch.bincount(row, minlength=num_rows).cumsum(0)
    out = csr_transpose(rowptr, col, num_cols)
    for actual, expected in zip(out, transpose_by_torch(rowptr, col,
                                                        num_cols)):
        assert torch.equal(actual, expected)
    # Transposing twice gives the matrix back, columns sorted within rows.
    back = csr_transpose(out[0], out[1], num_rows)
    assert torch.equal(back[0], rowptr)
    assert torch.equal(back[1], (row * num_cols + col).sort().values %
                       num_cols)
    assert torch.equal(col[out[2][back[2]]], back[1])


TRANSPOSE_ERRORS = {
    'col out of range': (lambda: csr_transpose(
        torch.tensor([0, 2]), torch.tensor([0, 3]), 3),
        "'col' contains column 3 but the matrix has 3 columns"),
    'negative col': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([-1]), 3),
        "'col' contains column -1"),
    'rowptr end': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0, 1]), 3),
        "'rowptr' must run from 0 to the number of entries in 'col' \\(2\\)"),
    'rowptr decreasing': (lambda: csr_transpose(
        torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1]), 3),
        "'rowptr' must be non-decreasing, but row 1 spans \\[2, 1\\)"),
    'negative num_cols': (lambda: csr_transpose(
        torch.tensor([0]), torch.tensor([], dtype=torch.long), -1),
        "'num_cols' must be non-negative"),
    'int32 col': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0], dtype=torch.int32), 3),
        "'col' must be an int64 tensor"),
    'empty rowptr': (lambda: csr_transpose(
        torch.tensor([], dtype=torch.long), torch.tensor([0]), 3),
        "'rowptr' must have at least one entry"),
    'rowptr start': (lambda: csr_transpose(
        torch.tensor([1, 2]), torch.tensor([0]), 3),
        "'rowptr' must run from 0 .* got 1 to 2"),
    # Not truncated to 4 by the native path:
    'float num_cols': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), 4.7),
        "^csr_transpose: 'num_cols' must be an int \\(got float 4.7\\)$"),
    'nan num_cols': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), float('nan')),
        "^csr_transpose: 'num_cols' must be an int \\(got float nan\\)$"),
    'bool num_cols': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), True),
        "'num_cols' must be an int \\(got bool True\\)"),
    'str num_cols': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), '3'),
        "'num_cols' must be an int \\(got str '3'\\)"),
    'meta rowptr': (lambda: csr_transpose(
        torch.tensor([0, 1], device='meta'), torch.tensor([0]), 3),
        "'rowptr' must be a CPU tensor \\(got device meta\\)"),
    'meta col': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0], device='meta'), 3),
        "'col' must be a CPU tensor \\(got device meta\\)"),
    # num_cols + 1 int64 entries (8 TiB) cannot be allocated:
    'huge num_cols': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), 2**40),
        "^csr_transpose: 'num_cols' = 1099511627776 needs 8,192.0 GiB "
        "for the row pointer of the transpose"),
    'num_cols past int64': (lambda: csr_transpose(
        torch.tensor([0, 1]), torch.tensor([0]), 2**70),
        "'num_cols' = 1180591620717411303424 needs"),
}


@pytest.mark.parametrize('case', list(TRANSPOSE_ERRORS))
def test_csr_transpose_errors(case, monkeypatch):
    fn, match = TRANSPOSE_ERRORS[case]
    assert_same_error(fn, monkeypatch, match)


def test_csr_transpose_accepts_integer_types(backend):
    import numpy as np
    rowptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 2, 2])
    expected = csr_transpose(rowptr, col, 3)
    for num_cols in (np.int64(3), torch.tensor(3)):
        for a, b in zip(csr_transpose(rowptr, col, num_cols), expected):
            assert torch.equal(a, b)


def test_csr_transpose_allocation_failure(monkeypatch):
    # Where the memory check lets a size through that the allocator then
    # refuses, the allocator's RuntimeError becomes the same ValueError.
    import torch_autoscale.ops as ops_module

    def refuse(*args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                           "DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 8796093022216 bytes.")

    monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', False)
    monkeypatch.setattr(ops_module, '_physical_memory', lambda: 0)
    monkeypatch.setattr(ops_module, '_csr_transpose_fallback', refuse)
    with pytest.raises(ValueError, match=r"^csr_transpose: 'num_cols' = "
                       r"1099511627776 needs 8,192.0 GiB") as info:
        csr_transpose(torch.tensor([0, 1]), torch.tensor([0]), 2**40)
    assert isinstance(info.value.__cause__, RuntimeError)

    def other(*args):
        raise RuntimeError('something else')

    monkeypatch.setattr(ops_module, '_csr_transpose_fallback', other)
    with pytest.raises(RuntimeError, match='something else'):
        csr_transpose(torch.tensor([0, 1]), torch.tensor([0]), 3)


@onlyNative
def test_csr_transpose_opcheck():
    rowptr, col = random_csr(30, 100, seed=0)
    op = torch.ops.torch_autoscale.csr_transpose.default
    torch.library.opcheck(op, (rowptr, col, 30))
    torch.library.opcheck(op, (torch.zeros(4, dtype=torch.long),
                               torch.tensor([], dtype=torch.long), 5))


# read_async / write_async ####################################################


def random_table(num_rows, channels, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_rows, channels, generator=gen).to(dtype)


def random_runs(num_rows, seed=0):
    r"""Non-overlapping runs in random order, some of them empty."""
    gen = torch.Generator().manual_seed(seed)
    bounds = torch.randperm(num_rows - 1, generator=gen)[:19].add(1).sort()
    ptr = torch.cat(
        [torch.tensor([0]), bounds.values,
         torch.tensor([num_rows])])
    offset, count = ptr[:-1], ptr[1:] - ptr[:-1]
    perm = torch.randperm(offset.numel(), generator=gen)
    keep = perm[:offset.numel() // 2]  # Half of the runs.
    offset, count = offset[keep], count[keep]
    count[::4] = 0
    return offset, count


def expected_rows(offset, count, index):
    rows = [torch.arange(o, o + c) for o, c in zip(offset.tolist(),
                                                   count.tolist())]
    return torch.cat(rows + [index])


MODES = ['runs', 'index', 'both', 'none']


def read_args(mode, num_rows=5000, seed=0):
    offset, count = random_runs(num_rows, seed)
    index = torch.randint(num_rows, (700, ),
                          generator=torch.Generator().manual_seed(seed))
    if mode in ('index', 'none'):
        offset = count = None
    if mode in ('runs', 'none'):
        index = index[:0]
    return offset, count, index


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('channels', [1, 16, 129])
def test_read_async_cpu(backend, dtype, mode, channels):
    src = random_table(5000, channels, dtype)
    offset, count, index = read_args(mode)
    rows = expected_rows(offset if offset is not None else torch.tensor([]),
                         count if count is not None else torch.tensor([]),
                         index)
    n = rows.numel()
    buffer = torch.zeros(n + 5, channels, dtype=dtype)
    dst = torch.full((n + 7, channels), 42., dtype=dtype)

    assert read_async(src, offset, count, index, buffer, dst) is None
    synchronize()
    assert torch.equal(buffer[:n], src[rows])
    assert torch.equal(dst[:n], src[rows])
    assert bool((dst[n:] == 42).all())
    assert bool((buffer[n:] == 0).all())


def test_read_async_into_buffer(backend):
    # The buffer may be the destination itself.
    src = random_table(100, 8, torch.float32)
    index = torch.tensor([5, 99, 0, 5])
    buffer = torch.zeros(4, 8)
    read_async(src, torch.tensor([10]), torch.tensor([0]), index, buffer,
               buffer)
    assert torch.equal(buffer, src[index])


@pytest.mark.parametrize('dtype', DTYPES + [torch.int64])
@pytest.mark.parametrize('channels', [1, 16, 129])
def test_write_async_cpu(backend, dtype, channels):
    dst = random_table(5000, channels, dtype, seed=1)
    expected = dst.clone()
    offset, count = random_runs(5000, seed=2)
    rows = expected_rows(offset, count, torch.tensor([], dtype=torch.long))
    src = random_table(rows.numel(), channels, dtype, seed=3)
    expected[rows] = src

    assert write_async(src, offset, count, dst) is None
    synchronize()
    assert torch.equal(dst, expected)


def test_write_then_read(backend):
    table = torch.zeros(100, 4)
    write_async(torch.ones(10, 4), torch.tensor([20]), torch.tensor([10]),
                table)
    dst = torch.zeros(12, 4)
    read_async(table, torch.tensor([15]), torch.tensor([10]),
               torch.tensor([29, 30]), torch.empty(12, 4), dst)
    synchronize()
    assert dst.sum(dim=1).tolist() == [0.] * 5 + [4.] * 6 + [0.]


def read_error_cases():
    src = torch.randn(10, 4)
    offset, count, index = torch.tensor([2, 7]), torch.tensor([3, 2]), \
        torch.tensor([1, 9])
    buffer, dst = torch.empty(7, 4), torch.empty(7, 4)
    base = dict(src=src, offset=offset, count=count, index=index,
                buffer=buffer, dst=dst)
    return base, {
        'buffer_too_small': (dict(buffer=torch.empty(6, 4)),
                             r"'buffer' has 6 rows but this read needs 7; "
                             r"create the AsyncIOPool with buffer_size >= 7$"),
        'dst_too_small': (dict(dst=torch.empty(5, 4)),
                          r"'dst' has 5 rows but this read needs 7$"),
        'buffer_width': (dict(buffer=torch.empty(7, 5)),
                         r"'buffer' has rows of 5 channels but 'src' has 4"),
        'dst_width': (dict(dst=torch.empty(7, 3)),
                      r"'dst' has rows of 3 channels but 'src' has 4"),
        'dst_dtype': (dict(dst=torch.empty(7, 4, dtype=torch.half)),
                      r"'dst' must have the same dtype as 'src'"),
        'src_dim': (dict(src=torch.randn(40)),
                    r"'src' must be two-dimensional \[num_rows, num_channels\]"
                    r" \(got 1 dimensions\)"),
        'dst_contiguous': (dict(dst=torch.empty(4, 7).t()),
                           r"'dst' must be contiguous"),
        'offset_without_count': (dict(count=None),
                                 r"'offset' and 'count' must be given "
                                 r"together"),
        'count_without_offset': (dict(offset=None),
                                 r"'offset' and 'count' must be given "
                                 r"together"),
        'index_dtype': (dict(index=torch.tensor([1, 9], dtype=torch.int32)),
                        r"'index' must be an int64 tensor"),
        'index_dim': (dict(index=torch.tensor([[1, 9]])),
                      r"'index' must be one-dimensional \(got 2 dimensions\)"),
        'index_range': (dict(index=torch.tensor([1, 10])),
                        r"'index' contains row 10 but 'src' has 10 rows"),
        'index_negative': (dict(index=torch.tensor([-1, 10])),
                           r"'index' contains row -1 but 'src' has 10 rows"),
        'run_range': (dict(offset=torch.tensor([2, 9])),
                      r"run 1 \(offset 9, count 2\) is out of range for "
                      r"'src' with 10 rows"),
        'run_negative': (dict(count=torch.tensor([-1, 2])),
                         r"run 0 \(offset 2, count -1\) is out of range"),
        'run_lengths': (dict(count=torch.tensor([3])),
                        r"'offset' has 2 entries but 'count' has 1"),
        # The fallback used to copy into a meta 'dst' without complaint.
        'dst_meta': (dict(dst=torch.empty(7, 4, device='meta')),
                     r"'dst' must be a CPU or CUDA tensor \(got device "
                     r"meta\)"),
        'src_meta': (dict(src=torch.empty(10, 4, device='meta')),
                     r"'src' must be a CPU tensor \(got device meta\)"),
        'buffer_meta': (dict(buffer=torch.empty(7, 4, device='meta')),
                        r"'buffer' must be a CPU tensor \(got device meta\)"),
        'index_meta': (dict(index=torch.empty(2, dtype=torch.long,
                                              device='meta')),
                       r"'index' must be a CPU tensor \(got device meta\)"),
        'offset_meta': (dict(offset=torch.empty(2, dtype=torch.long,
                                                device='meta')),
                        r"'offset' must be a CPU tensor \(got device meta\)"),
        'index_list': (dict(index=[1, 9]),
                       r"'index' must be a tensor \(got list\)"),
    }


@pytest.mark.parametrize('case', list(read_error_cases()[1]))
def test_read_async_errors(case, monkeypatch):
    base, cases = read_error_cases()
    update, match = cases[case]
    kwargs = {**base, **update}
    assert_same_error(lambda: read_async(**kwargs), monkeypatch,
                      '^read_async: ' + match)


def write_error_cases():
    dst = torch.zeros(10, 4)
    base = dict(src=torch.randn(5, 4), offset=torch.tensor([0, 6]),
                count=torch.tensor([2, 3]), dst=dst)
    return base, {
        'src_rows': (dict(src=torch.randn(6, 4)),
                     r"'src' has 6 rows but the runs in 'count' sum to 5$"),
        'dst_width': (dict(dst=torch.zeros(10, 3)),
                      r"'dst' has rows of 3 channels but 'src' has 4"),
        'dst_dtype': (dict(dst=torch.zeros(10, 4, dtype=torch.bfloat16)),
                      r"'dst' must have the same dtype as 'src'"),
        'run_range': (dict(offset=torch.tensor([0, 8])),
                      r"run 1 \(offset 8, count 3\) is out of range for "
                      r"'dst' with 10 rows"),
        'offset_dtype': (dict(offset=torch.tensor([0., 6.])),
                         r"'offset' must be an int64 tensor"),
        'src_contiguous': (dict(src=torch.randn(4, 5).t()),
                           r"'src' must be contiguous"),
        'src_meta': (dict(src=torch.empty(5, 4, device='meta')),
                     r"'src' must be a CPU or CUDA tensor \(got device "
                     r"meta\)"),
        'count_meta': (dict(count=torch.empty(2, dtype=torch.long,
                                              device='meta')),
                       r"'count' must be a CPU tensor \(got device meta\)"),
    }


@pytest.mark.parametrize('case', list(write_error_cases()[1]))
def test_write_async_errors(case, monkeypatch):
    base, cases = write_error_cases()
    update, match = cases[case]
    kwargs = {**base, **update}
    before = kwargs['dst'].clone()
    assert_same_error(lambda: write_async(**kwargs), monkeypatch,
                      '^write_async: ' + match)
    assert torch.equal(kwargs['dst'], before)  # Nothing was written.


@onlyNative
def test_fallback_matches_native(monkeypatch):
    rowptr, col = random_csr(500, 3000, seed=4)
    value = torch.randn(3000).to(torch.bfloat16)
    n_id = torch.randperm(500)[:100]
    src = random_table(500, 12, torch.float16)
    offset, count, index = read_args('both', num_rows=500)
    n = int(count.sum()) + index.numel()
    outs = []
    for native in [True, False]:
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', native)
        relabelled = relabel_one_hop(rowptr, col, value, n_id)
        dst = torch.zeros(n, 12, dtype=torch.float16)
        read_async(src, offset, count, index, torch.empty_like(dst), dst)
        table = src.clone()
        write_async(dst[:int(count.sum())], offset, count, table)
        outs.append((relabelled, dst, table))
    assert_equal_outputs(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    assert torch.equal(outs[0][2], outs[1][2])


@onlyNative
def test_async_io_opcheck():
    # The schemas declare exactly the mutated arguments (buffer, dst).
    src = random_table(50, 8, torch.float32)
    read_op = torch.ops.torch_autoscale.read_async.default
    torch.library.opcheck(
        read_op, (src, torch.tensor([3]), torch.tensor([4]),
                  torch.tensor([0, 49]), torch.empty(6, 8), torch.empty(6, 8)),
        test_utils='test_schema')
    write_op = torch.ops.torch_autoscale.write_async.default
    torch.library.opcheck(
        write_op, (torch.randn(4, 8), torch.tensor([10]), torch.tensor([4]),
                   src), test_utils='test_schema')


@onlyNative
def test_cuda_version():
    version = torch.ops.torch_autoscale.cuda_version()
    assert isinstance(version, int)
    assert version == -1 or version >= 10000
    assert torch_autoscale.typing.WITH_CUDA_OPS == (
        torch.cuda.is_available() and version > 0)


# CUDA ########################################################################


def side_stream():
    r"""A new CUDA stream that first waits for the current one."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    return stream


@onlyCUDA
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('mode', MODES)
def test_read_async_cuda(dtype, mode):
    src = random_table(5000, 33, dtype)
    offset, count, index = read_args(mode)
    n = expected_rows(
        offset if offset is not None else torch.tensor([], dtype=torch.long),
        count if count is not None else torch.tensor([], dtype=torch.long),
        index).numel()
    expected = torch.zeros(n + 3, 33, dtype=dtype)
    read_async(src, offset, count, index, torch.empty(n, 33, dtype=dtype),
               expected)

    buffer = torch.empty(n + 3, 33, dtype=dtype).pin_memory()
    dst = torch.zeros(n + 3, 33, dtype=dtype, device='cuda')
    with torch.cuda.stream(side_stream()):
        read_async(src, offset, count, index, buffer, dst)
    synchronize()
    # Bit for bit, also rows past `n` untouched:
    assert torch.equal(dst.cpu().view(torch.uint8),
                       expected.view(torch.uint8))


@onlyCUDA
@pytest.mark.parametrize('dtype', DTYPES)
def test_write_async_cuda(dtype):
    offset, count = random_runs(5000, seed=1)
    total = int(count.sum())
    src = random_table(total, 33, dtype, seed=2)
    expected = random_table(5000, 33, dtype, seed=3)
    dst = expected.clone().pin_memory()
    write_async(src, offset, count, expected)

    src = src.cuda()
    with torch.cuda.stream(side_stream()):
        write_async(src, offset, count, dst)
    synchronize()
    assert torch.equal(dst.view(torch.uint8), expected.view(torch.uint8))


@onlyCUDA
def test_cuda_write_then_read_in_call_order():
    table = torch.zeros(1000, 8).pin_memory()
    src = torch.ones(100, 8, device='cuda')
    buffer = torch.empty(100, 8).pin_memory()
    dst = torch.zeros(100, 8, device='cuda')
    push, pull = side_stream(), side_stream()
    with torch.cuda.stream(push):
        write_async(src, torch.tensor([300]), torch.tensor([100]), table)
    with torch.cuda.stream(pull):  # No synchronize() in between.
        read_async(table, torch.tensor([300]), torch.tensor([100]),
                   torch.tensor([], dtype=torch.long), buffer, dst)
    synchronize()
    assert bool((dst == 1).all())
    assert float(table.sum()) == 800.


@onlyCUDA
def test_cuda_temporaries_released_by_caller():
    # The worker never releases tensors itself (that may need the GIL, which
    # the caller holds while it waits in synchronize()): views dropped right
    # after the call must not deadlock.
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        table = torch.randn(1000, 8).pin_memory()
        buffer = torch.empty(1000, 8).pin_memory()
        dst = torch.zeros(1000, 8, device='cuda')
        with torch.cuda.stream(side_stream()):
            for i in range(10):
                read_async(table, torch.tensor([i]), torch.tensor([100]),
                           torch.tensor([999]), buffer[:101], dst[:101])
                synchronize()  # Before `dst` is used on the GPU.
                write_async(dst[:101].clone(), torch.tensor([500]),
                            torch.tensor([101]), table)
        synchronize()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert torch.equal(dst[:101].cpu(), table[500:601])


@onlyCUDA
def test_cuda_fallback_matches_native(monkeypatch):
    src = random_table(500, 16, torch.float32)
    offset, count, index = read_args('both', num_rows=500)
    n = int(count.sum()) + index.numel()
    outs = []
    for native in [True, False]:
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', native)
        buffer = torch.empty(n, 16).pin_memory()
        dst = torch.zeros(n, 16, device='cuda')
        with torch.cuda.stream(side_stream()):
            read_async(src, offset, count, index, buffer, dst)
        synchronize()
        outs.append(dst.cpu())
    assert torch.equal(outs[0], outs[1])


@onlyCUDA
def test_cuda_errors(monkeypatch):
    src = torch.randn(10, 4)
    index = torch.tensor([1, 2])
    dst = torch.empty(2, 4, device='cuda')
    pinned = torch.empty(2, 4).pin_memory()
    # On the default stream:
    assert_same_error(
        lambda: read_async(src, None, None, index, pinned, dst), monkeypatch,
        r"^read_async: the current CUDA stream is the default stream; call "
        r"it under 'with torch.cuda.stream\(s\):'")
    assert_same_error(
        lambda: write_async(dst, torch.tensor([0]), torch.tensor([2]),
                            src.pin_memory()), monkeypatch,
        r"^write_async: the current CUDA stream is the default stream")
    with torch.cuda.stream(torch.cuda.Stream()):
        assert_same_error(
            lambda: read_async(src, None, None, index, torch.empty(2, 4), dst),
            monkeypatch, r"^read_async: 'buffer' must be in pinned memory")
        assert_same_error(
            lambda: write_async(dst, torch.tensor([0]), torch.tensor([2]),
                                src), monkeypatch,
            r"^write_async: 'dst' must be in pinned memory")
        assert_same_error(
            lambda: read_async(src.cuda(), None, None, index, pinned, dst),
            monkeypatch, r"^read_async: 'src' must be a CPU tensor "
            r"\(got device cuda:0\)")
    synchronize()
