r"""Property tests: every native op against its pure-PyTorch path over valid
*and malformed* input.

For every generated case both paths must return identical results, or raise
the same exception type, leaving their outputs untouched. The module is run
in a child interpreter by :mod:`test_ops_property` (so that a crash in native
code fails a test instead of ending the run); its name keeps pytest from
collecting it in-process. ``TORCH_AUTOSCALE_PROPERTY_EXAMPLES`` sets the
number of cases per op (default: 2500).
"""
import os
from typing import Any, Callable, List, Optional

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import torch_autoscale.typing
from torch_autoscale import ops

if not torch_autoscale.typing.WITH_NATIVE:  # pragma: no cover
    pytest.skip('torch_autoscale._C is not built', allow_module_level=True)

EXAMPLES = int(os.environ.get('TORCH_AUTOSCALE_PROPERTY_EXAMPLES', 2500))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck))

HUGE = [2**62, -2**62, 2**63 - 1, -2**63]


def run(fn: Callable[[], Any], native: bool) -> Any:
    r"""Runs :obj:`fn` on one path; returns its result or the exception."""
    old = torch_autoscale.typing.WITH_NATIVE
    torch_autoscale.typing.WITH_NATIVE = native
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - compared by type below
        return e
    finally:
        torch_autoscale.typing.WITH_NATIVE = old


def flatten(out: Any) -> List[Optional[torch.Tensor]]:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten(o)]
    return [out]


def assert_same(native: Any, fallback: Any) -> None:
    event('error' if isinstance(native, Exception) else 'result')
    if isinstance(native, Exception) or isinstance(fallback, Exception):
        assert type(native) is type(fallback), (
            f'native gave {native!r}, fallback gave {fallback!r}')
        # Bad input is a named ValueError, never an internal error.
        assert isinstance(native, ValueError), repr(native)
        return
    for a, b in zip(flatten(native), flatten(fallback), strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert a.dtype == b.dtype and torch.equal(a, b), (a, b)


def index(values: List[int], dtype=torch.long) -> torch.Tensor:
    r"""An index tensor; int32 ones (a wrong dtype) keep their values small
    enough to convert."""
    if dtype != torch.long:
        values = [max(min(v, 2**31 - 1), -2**31) for v in values]
    return torch.tensor(values, dtype=dtype)


@st.composite
def ints(draw, low: int, high: int, max_size: int = 12) -> List[int]:
    r"""Mostly in-range integers, sometimes just outside, sometimes huge."""
    elem = st.one_of(st.integers(low, high), st.integers(low - 3, high + 3),
                     st.sampled_from(HUGE))
    return draw(st.lists(elem, max_size=max_size))


@st.composite
def rowptrs(draw, num_rows: int, nnz: int) -> List[int]:
    r"""A valid CSR row pointer, or one broken in one of many ways."""
    cuts = sorted(draw(st.lists(st.integers(0, nnz), min_size=num_rows - 1,
                                max_size=num_rows - 1))) if num_rows else []
    valid = [0] + cuts + [nnz] if num_rows else [0]
    how = draw(st.sampled_from(['valid'] * 4 + [
        'shuffle', 'end', 'start', 'entry', 'huge', 'random', 'short',
        'empty'
    ]))
    if how == 'valid':
        return valid
    if how == 'shuffle':
        return draw(st.permutations(valid))
    if how == 'end':
        return valid[:-1] + [nnz + draw(st.sampled_from([-1, 1, 5]))]
    if how == 'start':
        return [draw(st.sampled_from([-1, 1]))] + valid[1:]
    if how == 'entry' and len(valid) > 2:
        i = draw(st.integers(1, len(valid) - 2))
        return valid[:i] + [draw(st.integers(-3, nnz + 3))] + valid[i + 1:]
    if how == 'huge':
        i = draw(st.integers(0, len(valid) - 1))
        return valid[:i] + [draw(st.sampled_from(HUGE))] + valid[i + 1:]
    if how == 'random':
        return draw(ints(-2, nnz + 2, max_size=num_rows + 2))
    if how == 'short':
        return valid[:-1]
    return []


# Arguments of the wrong type for an int: never truncated, on neither path.
NOT_INTS = [4.7, 3.0, float('nan'), float('inf'), True, False, '3', None]


def on_meta(t: torch.Tensor, draw, p: int = 12) -> torch.Tensor:
    r"""Sometimes (one case in :obj:`p`) :obj:`t` as a meta tensor, which
    both paths must reject with the same error."""
    return t.to('meta') if draw(st.integers(0, p - 1)) == 0 else t


@st.composite
def csr(draw):
    num_rows = draw(st.integers(0, 6))
    num_cols = draw(st.one_of(*[st.integers(0, 6)] * 4, st.integers(-2, -1),
                              st.sampled_from([2**40, 2**61, 2**63 - 1]),
                              st.sampled_from(NOT_INTS)))
    nnz = draw(st.integers(0, 12))
    rowptr = draw(rowptrs(num_rows, nnz))
    cols = num_cols if type(num_cols) is int else 6
    high = max(cols, 1) if cols < 2**20 else 8
    col = draw(st.one_of(
        st.lists(st.integers(0, high - 1), min_size=nnz, max_size=nnz),
        ints(-2, high + 1, max_size=nnz + 2)))
    dtype = draw(st.sampled_from([torch.long] * 9 + [torch.int32]))
    return (on_meta(index(rowptr, dtype), draw), on_meta(index(col), draw),
            num_cols)


@SETTINGS
@given(csr())
def test_csr_transpose(case):
    rowptr, col, num_cols = case

    def fn():
        return ops.csr_transpose(rowptr, col, num_cols)

    native, fallback = run(fn, True), run(fn, False)
    assert_same(native, fallback)
    if not isinstance(native, Exception):
        expected = ops.csr_transpose_reference(rowptr, col, num_cols)
        assert_same(native, expected)


@SETTINGS
@given(st.data())
def test_relabel_one_hop(data):
    num_nodes = data.draw(st.integers(0, 8))
    nnz = data.draw(st.integers(0, 16))
    rowptr = index(data.draw(rowptrs(num_nodes, nnz)))
    col = index(data.draw(st.one_of(
        st.lists(st.integers(0, max(num_nodes - 1, 0)), min_size=nnz,
                 max_size=nnz), ints(-2, num_nodes + 1, max_size=nnz + 2))))
    n_id = data.draw(st.one_of(
        st.lists(st.integers(0, max(num_nodes - 1, 0)), unique=True,
                 max_size=num_nodes),
        ints(-2, num_nodes + 1, max_size=num_nodes + 2)))
    n_id = index(n_id, data.draw(st.sampled_from([torch.long] * 9 +
                                                 [torch.int32])))
    value = data.draw(st.sampled_from(['none', 'float', '2d', 'wrong']))
    values = {
        'none': None,
        'float': torch.randn(col.numel()),
        '2d': torch.randn(col.numel(), 2),
        'wrong': torch.randn(col.numel() + 1),
    }[value]
    rowptr, col, n_id = (on_meta(t, data.draw) for t in (rowptr, col, n_id))
    if values is not None:
        values = on_meta(values, data.draw)
    bipartite = data.draw(st.one_of(
        *[st.booleans()] * 9, st.sampled_from([0, 1, 'yes', None, 1.0])))

    def fn():
        return ops.relabel_one_hop(rowptr, col, values, n_id, bipartite)

    assert_same(run(fn, True), run(fn, False))


@st.composite
def runs(draw, num_rows: int):
    r"""Runs (offset, count): valid, overlapping, out of range or huge."""
    k = draw(st.integers(0, 4))
    offset = draw(st.lists(st.integers(0, num_rows), min_size=k, max_size=k))
    count = [
        draw(st.integers(0, num_rows - o)) if num_rows >= o else 0
        for o in offset
    ]
    how = draw(st.sampled_from(['valid'] * 3 +
                               ['offset', 'count', 'length', 'huge']))
    if how == 'offset':
        offset = draw(ints(-2, num_rows + 2, max_size=k))
        offset = (offset + [0] * k)[:k]
    elif how == 'count':
        count = draw(ints(-2, num_rows + 2, max_size=k))
        count = (count + [0] * k)[:k]
    elif how == 'length':
        count = count + [1]
    elif how == 'huge' and k > 0:
        count[0] = draw(st.sampled_from(HUGE))
    return index(offset), index(count)


@st.composite
def tables(draw):
    num_rows = draw(st.integers(0, 10))
    channels = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.int64]))
    src = (torch.arange(num_rows * channels) + 1).view(num_rows, channels)
    return num_rows, channels, src.to(dtype)


@SETTINGS
@given(st.data())
def test_read_async(data):
    num_rows, channels, src = data.draw(tables())
    offset, count = data.draw(runs(num_rows))
    if data.draw(st.booleans()):
        offset = count = None
    index_ = index(data.draw(ints(0, max(num_rows - 1, 0), max_size=6)))
    n = index_.numel() + (int(count.clamp(0, 100).sum())
                          if count is not None else 0)
    buffer = torch.zeros(max(n + data.draw(st.integers(-1, 2)), 0),
                         channels, dtype=src.dtype)
    dst = torch.zeros(max(n + data.draw(st.integers(-1, 2)), 0), channels,
                      dtype=src.dtype)
    alias = data.draw(st.sampled_from(
        ['none'] * 5 +
        ['buffer_is_src', 'dst_is_src', 'buffer_is_dst', 'dst_in_buffer',
         'index_in_dst', 'wrong_dtype', 'wrong_width', 'meta_dst',
         'meta_src', 'meta_buffer', 'meta_index']))
    if alias == 'buffer_is_src':
        buffer = src
    elif alias == 'dst_is_src':
        dst = src
    elif alias == 'buffer_is_dst':
        buffer = dst
    elif alias == 'dst_in_buffer' and buffer.size(0) > 1:
        dst = buffer[1:]
    elif alias == 'index_in_dst' and src.dtype == torch.int64:
        dst = torch.zeros(max(n, 1) + 4, channels, dtype=torch.int64)
        index_ = dst.view(-1)[:index_.numel()]
    elif alias == 'wrong_dtype':
        dst = dst.to(torch.float64)
    elif alias == 'wrong_width':
        buffer = torch.zeros(buffer.size(0), channels + 1, dtype=src.dtype)
    elif alias == 'meta_dst':  # The fallback used to do nothing at all.
        dst = dst.to('meta')
    elif alias == 'meta_src':
        src = src.to('meta')
    elif alias == 'meta_buffer':
        buffer = buffer.to('meta')
    elif alias == 'meta_index':
        index_ = index_.to('meta')

    states = []
    for native in (True, False):
        # Fresh copies that share memory as the originals do, per path.
        s, b, d, i = clone_aliased(src, buffer, dst, index_)

        def call():
            ops.read_async(s, offset, count, i, b, d)

        out = run(call, native)
        states.append(out if isinstance(out, Exception) else
                      (s.clone(), b.clone(), d.clone()))
    assert_same(*states)


def clone_aliased(*tensors: torch.Tensor):
    r"""Copies of :obj:`tensors` that share memory exactly as they do."""
    bases = {}
    out = []
    for t in tensors:
        base = t._base if t._base is not None else t
        key = id(base)
        if key not in bases:
            bases[key] = base.clone()
        copy = bases[key]
        if t._base is None:
            out.append(copy)
        else:
            out.append(copy.as_strided(t.size(), t.stride(),
                                       t.storage_offset()))
    return out


@SETTINGS
@given(st.data())
def test_write_async(data):
    num_rows, channels, dst = data.draw(tables())
    offset, count = data.draw(runs(num_rows))
    total = int(count.clamp(0, 100).sum()) + data.draw(
        st.sampled_from([0] * 6 + [-1, 1]))
    src = -(torch.arange(max(total, 0) * channels) + 1).view(
        max(total, 0), channels).to(dst.dtype)
    alias = data.draw(st.sampled_from(['none'] * 6 +
                                      ['src_in_dst', 'offset_in_dst',
                                       'wrong_dtype', 'meta_src',
                                       'meta_dst', 'meta_count']))
    if alias == 'src_in_dst' and src.size(0) <= num_rows:
        src = dst[:src.size(0)]
    elif alias == 'offset_in_dst' and dst.dtype == torch.int64 and \
            dst.numel() >= offset.numel():
        dst.view(-1)[:offset.numel()] = offset
        offset = dst.view(-1)[:offset.numel()]
    elif alias == 'wrong_dtype':
        src = src.to(torch.float64)
    elif alias == 'meta_src':
        src = src.to('meta')
    elif alias == 'meta_dst':
        dst = dst.to('meta')
    elif alias == 'meta_count':
        count = count.to('meta')

    states = []
    for native in (True, False):
        d, s, o = clone_aliased(dst, src, offset)

        def call():
            ops.write_async(s, o, count, d)

        out = run(call, native)
        states.append(out if isinstance(out, Exception) else (d.clone(), ))
    assert_same(*states)
