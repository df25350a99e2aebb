r"""Native operators of :obj:`torch_autoscale` with pure-PyTorch fallbacks.

Every function calls the :obj:`torch_autoscale._C` kernel
(:obj:`torch.ops.torch_autoscale.*`) when the extension is loaded
(:obj:`torch_autoscale.typing.WITH_NATIVE`, read at call time) and a
pure-PyTorch implementation with identical results otherwise. Both paths raise
:class:`ValueError` with the same message for bad arguments: every index a
kernel dereferences (row pointers, columns, node ids, runs, rows) is
validated before any memory is touched, and outputs that alias inputs are
rejected, so malformed input is an error, never a crash or wrong rows. The
types and devices of the arguments are checked before either path is
chosen: every tensor must be on the CPU (:obj:`dst` of :meth:`read_async`
and :obj:`src` of :meth:`write_async` may be on a CUDA device), so a meta
tensor is a :class:`ValueError` too; integers must be integers (a float
:obj:`num_cols` is not truncated) and flags :obj:`bool`.
"""
import operator
import os
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor

import torch_autoscale.typing


def _native() -> bool:
    return torch_autoscale.typing.WITH_NATIVE


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _first(mask: Tensor) -> int:
    r"""The position of the first :obj:`True` in :obj:`mask`, or -1."""
    pos = mask.nonzero()
    return int(pos[0, 0]) if pos.numel() > 0 else -1


def _check_tensor(t: Any, op: str, name: str, cuda: bool = False) -> None:
    r"""Checks that :obj:`t` is a tensor on the CPU (or, if :obj:`cuda`, on a
    CUDA device): run by every wrapper before it picks a path, so that meta
    tensors, tensors of other devices and non-tensors give the same
    :class:`ValueError` on both."""
    _check(isinstance(t, Tensor), f"{op}: '{name}' must be a tensor (got "
           f"{type(t).__name__})")
    where = 'a CPU or CUDA' if cuda else 'a CPU'
    _check(t.device.type == 'cpu' or (cuda and t.device.type == 'cuda'),
           f"{op}: '{name}' must be {where} tensor (got device {t.device})")


def _check_int(v: Any, op: str, name: str) -> int:
    r"""Returns :obj:`v` as an :obj:`int` if it is an integer (anything with
    :meth:`__index__` but a :obj:`bool`), and raises :class:`ValueError`
    otherwise (a float is not truncated)."""
    try:
        _check(not isinstance(v, bool), '')
        return operator.index(v)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: '{name}' must be an int (got "
                         f"{type(v).__name__} {v!r})") from None


def _check_bool(v: Any, op: str, name: str) -> bool:
    _check(isinstance(v, bool), f"{op}: '{name}' must be a bool (got "
           f"{type(v).__name__} {v!r})")
    return v


def _check_index(t: Tensor, op: str, name: str) -> None:
    _check(t.dim() == 1, f"{op}: '{name}' must be one-dimensional "
           f"(got {t.dim()} dimensions)")
    _check(t.dtype == torch.int64, f"{op}: '{name}' must be an int64 tensor")
    _check(t.device.type == 'cpu', f"{op}: '{name}' must be a CPU tensor "
           f"(got device {t.device})")
    _check(t.is_contiguous(), f"{op}: '{name}' must be contiguous")


# relabel_one_hop #############################################################


def relabel_one_hop(
    rowptr: Tensor,
    col: Tensor,
    value: Optional[Tensor],
    n_id: Tensor,
    bipartite: bool = False,
) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    r"""Restricts a CSR graph to the rows of the nodes :obj:`n_id` and
    relabels its columns to local indices, adding the 1-hop halo
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    The rows of :obj:`n_id` are kept in the order of :obj:`n_id`. Every column
    is relabelled to its position in the extended node list
    :obj:`out_n_id`, which starts with :obj:`n_id` and continues with the
    columns not in :obj:`n_id` (the halo) in the order they are first seen
    when scanning the kept rows in order and each row's edges in stored order.

    Args:
        rowptr (torch.Tensor): The CSR row pointer of the graph, an int64 CPU
            tensor of :obj:`num_nodes + 1` entries from :obj:`0` to
            :obj:`col.numel()`.
        col (torch.Tensor): The column indices of the graph, an int64 CPU
            tensor of :obj:`num_edges` entries.
        value (torch.Tensor, optional): Edge values of any dtype, with
            :obj:`num_edges` entries along the first dimension; gathered
            along with the kept edges. Gradients do not flow through it.
        n_id (torch.Tensor): The distinct nodes of the mini-batch, an int64
            CPU tensor.
        bipartite (bool, optional): If set to :obj:`False`, the halo nodes get
            empty rows, so that the result is a square adjacency of size
            :obj:`len(out_n_id)`; otherwise it only has the
            :obj:`len(n_id)` rows of the mini-batch. Must be a :obj:`bool`.
            (default: :obj:`False`)

    Raises:
        ValueError: If an argument has the wrong type, dtype, shape or
            device, :obj:`rowptr` does not run from :obj:`0` to
            :obj:`col.numel()` without decreasing over the rows of
            :obj:`n_id`, or a node id or column is out of range.

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor or None, torch.Tensor):
        The row pointer :obj:`out_rowptr` (:obj:`len(n_id) + 1` entries if
        :obj:`bipartite`, else :obj:`len(out_n_id) + 1`), the relabelled
        columns :obj:`out_col`, the kept :obj:`out_value` (:obj:`None` if
        :obj:`value` is :obj:`None`), and :obj:`out_n_id`, whose first
        :obj:`len(n_id)` entries are :obj:`n_id`.

    Example:
        >>> rowptr = torch.tensor([0, 2, 3, 5, 6])
        >>> col = torch.tensor([1, 3, 0, 1, 3, 2])
        >>> relabel_one_hop(rowptr, col, None, torch.tensor([2]))
        (tensor([0, 2, 2, 2]), tensor([1, 2]), None, tensor([2, 1, 3]))
    """
    op = 'relabel_one_hop'
    for name, t in (('rowptr', rowptr), ('col', col), ('value', value),
                    ('n_id', n_id)):
        if t is not None or name != 'value':
            _check_tensor(t, op, name)
    _check_bool(bipartite, op, 'bipartite')
    rowptr, col = rowptr.contiguous(), col.contiguous()
    n_id = n_id.contiguous()
    if _native():
        return torch.ops.torch_autoscale.relabel_one_hop(
            rowptr, col, value, n_id, bipartite)

    for name, t in (('rowptr', rowptr), ('col', col), ('n_id', n_id)):
        _check_index(t, op, name)
    if value is not None:
        _check(value.device.type == 'cpu', f"{op}: 'value' must be a CPU "
               f"tensor (got device {value.device})")
        _check(value.dim() >= 1 and value.size(0) == col.numel(),
               f"{op}: 'value' must hold one entry per edge along its first "
               f"dimension ({col.numel()}), got shape {list(value.shape)}")
    _check(rowptr.numel() >= 1, f"{op}: 'rowptr' must have at least one entry")
    first = int(rowptr[0])
    _check(first == 0, f"{op}: 'rowptr' must start at 0 (got {first})")
    num_nodes, last = rowptr.numel() - 1, int(rowptr[-1])
    _check(last == col.numel(), f"{op}: 'rowptr' ends at {last} but 'col' "
           f"has {col.numel()} entries")
    i = _first((n_id < 0) | (n_id >= num_nodes))
    if i >= 0:
        raise ValueError(f"{op}: 'n_id' contains node {int(n_id[i])} but the "
                         f"graph has {num_nodes} nodes")
    return relabel_one_hop_reference(rowptr, col, value, n_id, bipartite)


def _first_seen_ranks(x: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Returns the distinct values of :obj:`x` in the order they first occur
    and, for every entry of :obj:`x`, the rank of its value in that order."""
    uniq, inverse = torch.unique(x, return_inverse=True)
    arange = torch.arange(x.numel(), device=x.device)
    first = torch.full_like(uniq, x.numel()).scatter_reduce_(
        0, inverse, arange, reduce='amin')
    order = first.argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=x.device)
    return uniq[order], rank[inverse]


def relabel_one_hop_reference(
    rowptr: Tensor,
    col: Tensor,
    value: Optional[Tensor],
    n_id: Tensor,
    bipartite: bool = False,
) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    r"""A vectorized pure-PyTorch implementation of :meth:`relabel_one_hop`
    with the same arguments, results and data checks (duplicate nodes in
    :obj:`n_id`, invalid row pointers and columns out of range raise
    :class:`ValueError`). It is the fallback when the native extension is
    missing and the reference the tests compare against; unlike
    :meth:`relabel_one_hop` it also runs on GPU tensors.

    Args:
        rowptr (torch.Tensor): The CSR row pointer of the graph.
        col (torch.Tensor): The column indices of the graph.
        value (torch.Tensor, optional): Edge values of any dtype.
        n_id (torch.Tensor): The distinct nodes of the mini-batch.
        bipartite (bool, optional): If set to :obj:`False`, the halo nodes get
            empty rows. (default: :obj:`False`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor or None, torch.Tensor):
        :obj:`out_rowptr`, :obj:`out_col`, :obj:`out_value`, :obj:`out_n_id`
        as in :meth:`relabel_one_hop`.
    """
    op, device = 'relabel_one_hop', n_id.device
    num_nodes, num_edges = rowptr.numel() - 1, col.numel()
    batch_size = n_id.numel()
    arange = torch.arange(batch_size, device=device)

    _, rank = _first_seen_ranks(n_id)
    i = _first(rank != arange)
    if i >= 0:
        raise ValueError(f"{op}: 'n_id' contains node {int(n_id[i])} more "
                         f"than once")

    start, end = rowptr[n_id], rowptr[n_id + 1]
    i = _first((start < 0) | (start > end) | (end > num_edges))
    if i >= 0:
        raise ValueError(f"{op}: 'rowptr' is not a valid CSR pointer: row "
                         f"{int(n_id[i])} spans [{int(start[i])}, "
                         f"{int(end[i])}) of {num_edges} edges")

    deg = end - start
    out_rowptr = torch.zeros(batch_size + 1, dtype=torch.long, device=device)
    out_rowptr[1:] = deg.cumsum(0)
    num_out_edges = int(out_rowptr[-1])
    # Position of every kept edge in `col`, row by row in `n_id` order.
    e_id = torch.repeat_interleave(start - out_rowptr[:-1], deg,
                                   output_size=num_out_edges)
    e_id += torch.arange(num_out_edges, device=device)
    out_col = col[e_id]
    i = _first((out_col < 0) | (out_col >= num_nodes))
    if i >= 0:
        raise ValueError(f"{op}: 'col' contains node {int(out_col[i])} but "
                         f"the graph has {num_nodes} nodes")

    pos = torch.full((num_nodes, ), -1, dtype=torch.long, device=device)
    pos[n_id] = arange
    out_col = pos[out_col]
    mask = out_col < 0  # Halo edges: the column is not in `n_id`.
    halo, rank = _first_seen_ranks(col[e_id[mask]])
    out_col[mask] = batch_size + rank
    out_n_id = torch.cat([n_id, halo])

    if not bipartite:
        pad = out_rowptr[-1:].expand(halo.numel())
        out_rowptr = torch.cat([out_rowptr, pad])
    out_value = value[e_id] if value is not None else None
    return out_rowptr, out_col, out_value, out_n_id


# csr_transpose ###############################################################


def csr_transpose(rowptr: Tensor, col: Tensor,
                  num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Transposes a CSR matrix by a counting sort over its entries, in time
    linear in their number (PyTorch's :meth:`to_sparse_csr` of a transposed
    matrix sorts them).

    The backward pass of a sparse-dense product multiplies with the
    transpose of the mini-batch adjacency, a fresh matrix every mini-batch
    (see :func:`torch_autoscale.utils.transpose_csr`).

    Args:
        rowptr (torch.Tensor): The CSR row pointer, an int64 CPU tensor of
            :obj:`num_rows + 1` non-decreasing entries from :obj:`0` to
            :obj:`col.numel()`.
        col (torch.Tensor): The column indices, an int64 CPU tensor with
            entries in :obj:`[0, num_cols)`.
        num_cols (int): The number of columns of the matrix, a non-negative
            int (not a float, which would be truncated). It may exceed the
            largest column, but the transpose has :obj:`num_cols + 1` row
            pointer entries: a :obj:`num_cols` whose row pointer (built at
            about twice its size) does not fit into the physical memory of
            the machine, or that the allocator refuses, is a
            :class:`ValueError` stating the GiB needed, not an allocator
            error.

    Raises:
        ValueError: If an argument has the wrong type, dtype, shape or
            device, :obj:`rowptr` or :obj:`col` is malformed, or the
            transpose does not fit into memory.

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor): The row pointer of the
        transpose (:obj:`num_cols + 1` entries), its column indices (the
        original rows, increasing within every row of the transpose) and
        :obj:`perm`, the position in :obj:`col` of every entry of the
        transpose: the transposed values are :obj:`value[perm]`.

    Example:
        >>> rowptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 2, 2])
        >>> csr_transpose(rowptr, col, num_cols=3)
        (tensor([0, 1, 1, 3]), tensor([0, 0, 1]), tensor([0, 1, 2]))
    """
    op = 'csr_transpose'
    _check_tensor(rowptr, op, 'rowptr')
    _check_tensor(col, op, 'col')
    num_cols = _check_int(num_cols, op, 'num_cols')
    _check_transpose_memory(num_cols, op)
    rowptr, col = rowptr.contiguous(), col.contiguous()
    try:
        if _native():
            return torch.ops.torch_autoscale.csr_transpose(
                rowptr, col, num_cols)
        return _csr_transpose_fallback(rowptr, col, num_cols)
    except RuntimeError as e:
        if not _is_allocation_failure(e):
            raise
        raise ValueError(_transpose_memory_message(num_cols, op)) from e


def _physical_memory() -> int:
    r"""The bytes of physical memory of the machine (0 where unknown)."""
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, OSError, ValueError):  # pragma: no cover
        return 0


def _transpose_bytes(num_cols: int) -> int:
    r"""The bytes of the row pointer of the transpose (:obj:`num_cols + 1`
    int64 entries); building it takes about twice that."""
    return (max(num_cols, 0) + 1) * 8


def _transpose_memory_message(num_cols: int, op: str) -> str:
    gib = _transpose_bytes(num_cols) / 2**30
    return (f"{op}: 'num_cols' = {num_cols} needs {gib:,.1f} GiB for the row "
            f"pointer of the transpose ({num_cols} + 1 int64 entries, about "
            f"twice that while it is built), more than this machine can "
            f"allocate ({_physical_memory() / 2**30:,.1f} GiB of memory); "
            f"pass the actual number of columns")


def _check_transpose_memory(num_cols: int, op: str) -> None:
    r"""Rejects a :obj:`num_cols` whose row pointer, built at about twice its
    size, would not fit into the physical memory."""
    memory = _physical_memory()
    _check(memory <= 0 or 2 * _transpose_bytes(num_cols) <= memory,
           _transpose_memory_message(num_cols, op))


def _is_allocation_failure(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or (
        "can't allocate memory" in str(e))


def _csr_transpose_fallback(rowptr: Tensor, col: Tensor,
                            num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    op = 'csr_transpose'
    _check_index(rowptr, op, 'rowptr')
    _check_index(col, op, 'col')
    _check(num_cols >= 0, f"{op}: 'num_cols' must be non-negative (got "
           f"{num_cols})")
    _check(num_cols < 2**60, f"{op}: 'num_cols' must be less than 2**60 "
           f"(got {num_cols}); its row pointer would not fit in memory")
    _check(rowptr.numel() >= 1, f"{op}: 'rowptr' must have at least one entry")
    first, last = int(rowptr[0]), int(rowptr[-1])
    _check(first == 0 and last == col.numel(), f"{op}: 'rowptr' must run "
           f"from 0 to the number of entries in 'col' ({col.numel()}), got "
           f"{first} to {last}")
    i = _first(rowptr.diff() < 0)
    if i >= 0:
        raise ValueError(f"{op}: 'rowptr' must be non-decreasing, but row {i} "
                         f"spans [{int(rowptr[i])}, {int(rowptr[i + 1])})")
    i = _first((col < 0) | (col >= num_cols))
    if i >= 0:
        raise ValueError(f"{op}: 'col' contains column {int(col[i])} but the "
                         f"matrix has {num_cols} columns")
    return csr_transpose_reference(rowptr, col, num_cols)


def csr_transpose_reference(rowptr: Tensor, col: Tensor,
                            num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""A pure-PyTorch implementation of :meth:`csr_transpose` (a stable sort
    of the entries by column) for valid input, on any device: the fallback
    when the native extension is missing and the reference the tests compare
    against."""
    num_rows = rowptr.numel() - 1
    perm = torch.argsort(col, stable=True)
    row = torch.repeat_interleave(
        torch.arange(num_rows, device=col.device), rowptr.diff(),
        output_size=col.numel())
    out_rowptr = torch.zeros(num_cols + 1, dtype=torch.long,
                             device=col.device)
    out_rowptr[1:] = torch.bincount(col, minlength=num_cols).cumsum(0)
    return out_rowptr, row[perm], perm


# read_async / write_async / synchronize ######################################


def _check_table(t: Tensor, op: str, name: str) -> None:
    _check(t.dim() == 2, f"{op}: '{name}' must be two-dimensional "
           f"[num_rows, num_channels] (got {t.dim()} dimensions)")
    _check(t.is_contiguous(), f"{op}: '{name}' must be contiguous")


def _check_cpu(t: Tensor, op: str, name: str) -> None:
    _check(t.device.type == 'cpu', f"{op}: '{name}' must be a CPU tensor "
           f"(got device {t.device})")


def _check_like_src(t: Tensor, src: Tensor, op: str, name: str) -> None:
    _check(t.dtype == src.dtype,
           f"{op}: '{name}' must have the same dtype as 'src'")
    _check(t.size(1) == src.size(1), f"{op}: '{name}' has rows of "
           f"{t.size(1)} channels but 'src' has {src.size(1)}")


def _check_runs(offset: Tensor, count: Tensor, num_rows: int, op: str,
                table: str) -> int:
    _check(offset.numel() == count.numel(), f"{op}: 'offset' has "
           f"{offset.numel()} entries but 'count' has {count.numel()}")
    i = _first((offset < 0) | (offset > num_rows) | (count < 0)
               | (count > num_rows - offset))
    if i >= 0:
        raise ValueError(f"{op}: run {i} (offset {int(offset[i])}, count "
                         f"{int(count[i])}) is out of range for '{table}' "
                         f"with {num_rows} rows")
    return int(count.sum())


def _overlaps(a: Tensor, b: Tensor) -> bool:
    r"""Whether the memory of two contiguous tensors overlaps."""
    if a.device != b.device:
        return False
    a_bytes = a.numel() * a.element_size()
    b_bytes = b.numel() * b.element_size()
    if a_bytes == 0 or b_bytes == 0:
        return False
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + b_bytes and b0 < a0 + a_bytes


def _check_no_alias(a: Tensor, b: Tensor, op: str, a_name: str,
                    b_name: str) -> None:
    _check(not _overlaps(a, b), f"{op}: '{a_name}' and '{b_name}' share "
           f"memory; pass a separate tensor (e.g., '{a_name}.clone()')")


def _check_disjoint_runs(offset: Tensor, count: Tensor, op: str) -> None:
    r"""Checks that the non-empty runs do not overlap, in order of their
    offsets (ties in call order), as the native kernels do."""
    run = (count > 0).nonzero().view(-1)
    if run.numel() < 2:
        return
    order = run[torch.sort(offset[run], stable=True)[1]]
    start, end = offset[order], (offset + count)[order]
    i = _first(end[:-1] > start[1:])
    if i >= 0:
        a, b = int(order[i]), int(order[i + 1])
        raise ValueError(f"{op}: runs must not overlap, but run {a} (offset "
                         f"{int(offset[a])}, count {int(count[a])}) overlaps "
                         f"run {b} (offset {int(offset[b])}, count "
                         f"{int(count[b])})")


def _check_side_stream(t: Tensor, op: str) -> None:
    _check(
        torch.cuda.current_stream(t.device) != torch.cuda.default_stream(
            t.device), f"{op}: the current CUDA stream is the default "
        f"stream; call it under 'with torch.cuda.stream(s):' with a side "
        f"stream 's' so that the copy overlaps with compute")


def _run_rows(offset: Tensor, count: Tensor) -> Tensor:
    r"""The table rows that the runs :obj:`(offset, count)` cover, in
    order."""
    total = int(count.sum())
    ptr = count.cumsum(0) - count
    rows = torch.repeat_interleave(offset - ptr, count, output_size=total)
    return rows + torch.arange(total)


def _use_native(t: Tensor) -> bool:
    return _native() and (t.device.type != 'cuda'
                          or torch_autoscale.typing.WITH_CUDA_OPS)


def read_async(
    src: Tensor,
    offset: Optional[Tensor],
    count: Optional[Tensor],
    index: Tensor,
    buffer: Tensor,
    dst: Tensor,
) -> None:
    r"""Reads rows of the host table :obj:`src` into :obj:`dst`: first the
    contiguous runs :obj:`src[offset[i]:offset[i] + count[i]]` one after
    another, then the rows :obj:`src[index]`.

    The :obj:`n = sum(count) + len(index)` rows are gathered into
    :obj:`buffer[:n]` and then copied to :obj:`dst[:n]`. Rows are copied as
    bytes, so any dtype works. :obj:`buffer` may be :obj:`dst` itself, but
    neither may share memory with :obj:`src` or the index tensors
    (:class:`ValueError` otherwise: the copies run in parallel and in
    place). If :obj:`dst` is a CPU tensor, the read is synchronous. If it
    is a CUDA tensor, the call returns at once: a native worker thread
    gathers into the pinned :obj:`buffer` and copies it to
    :obj:`dst` on the CUDA stream that is current at the time of the call,
    which must not be the default stream; :meth:`synchronize` waits until the
    rows have arrived. Reads and writes take effect in call order.

    Args:
        src (torch.Tensor): The host table of shape
            :obj:`[num_rows, num_channels]`.
        offset (torch.Tensor, optional): The first row of every run, an int64
            CPU tensor; given together with :obj:`count`.
        count (torch.Tensor, optional): The length of every run, an int64 CPU
            tensor.
        index (torch.Tensor): Further single rows to read after the runs, an
            int64 CPU tensor (may be empty).
        buffer (torch.Tensor): A host staging buffer with the dtype and row
            width of :obj:`src` and at least :obj:`n` rows; pinned if
            :obj:`dst` is on a GPU. Its first :obj:`n` rows are overwritten.
        dst (torch.Tensor): The destination (CPU or CUDA) with the dtype and
            row width of :obj:`src` and at least :obj:`n` rows.
    """
    op = 'read_async'
    for name, t in (('src', src), ('offset', offset), ('count', count),
                    ('index', index), ('buffer', buffer), ('dst', dst)):
        if t is not None or name not in ('offset', 'count'):
            _check_tensor(t, op, name, cuda=name == 'dst')
    if offset is not None:
        offset = offset.contiguous()
    if count is not None:
        count = count.contiguous()
    index = index.contiguous()
    if _use_native(dst):
        torch.ops.torch_autoscale.read_async(src, offset, count, index,
                                             buffer, dst)
        return

    _check_table(src, op, 'src')
    _check_table(buffer, op, 'buffer')
    _check_table(dst, op, 'dst')
    _check_cpu(src, op, 'src')
    _check_cpu(buffer, op, 'buffer')
    _check_like_src(buffer, src, op, 'buffer')
    _check_like_src(dst, src, op, 'dst')
    _check((offset is None) == (count is None),
           f"{op}: 'offset' and 'count' must be given together")
    if offset is not None and count is not None:
        _check_index(offset, op, 'offset')
        _check_index(count, op, 'count')
    _check_index(index, op, 'index')
    _check_no_alias(src, buffer, op, 'src', 'buffer')
    _check_no_alias(src, dst, op, 'src', 'dst')
    if buffer.data_ptr() != dst.data_ptr():
        _check_no_alias(buffer, dst, op, 'buffer', 'dst')
    for out, out_name in ((buffer, 'buffer'), (dst, 'dst')):
        if offset is not None and count is not None:
            _check_no_alias(offset, out, op, 'offset', out_name)
            _check_no_alias(count, out, op, 'count', out_name)
        _check_no_alias(index, out, op, 'index', out_name)
    num_rows = src.size(0)
    rows: List[Tensor] = []
    if offset is not None and count is not None:
        _check_runs(offset, count, num_rows, op, 'src')
        rows.append(_run_rows(offset, count))
    i = _first((index < 0) | (index >= num_rows))
    if i >= 0:
        raise ValueError(f"{op}: 'index' contains row {int(index[i])} but "
                         f"'src' has {num_rows} rows")
    rows.append(index)
    row = torch.cat(rows)
    n = row.numel()
    _check(
        buffer.size(0) >= n, f"{op}: 'buffer' has {buffer.size(0)} rows but "
        f"this read needs {n}; create the AsyncIOPool with "
        f"buffer_size >= {n}")
    _check(dst.size(0) >= n,
           f"{op}: 'dst' has {dst.size(0)} rows but this read needs {n}")
    if dst.device.type == 'cuda':
        _check(buffer.is_pinned(), f"{op}: 'buffer' must be in pinned memory "
               f"(allocate it with pin_memory=True)")
        _check_side_stream(dst, op)

    torch.index_select(src, 0, row, out=buffer[:n])
    if buffer.data_ptr() != dst.data_ptr():
        dst[:n].copy_(buffer[:n])


def write_async(src: Tensor, offset: Tensor, count: Tensor,
                dst: Tensor) -> None:
    r"""Writes the rows of :obj:`src` into contiguous runs of the host table
    :obj:`dst`: the next :obj:`count[i]` rows of :obj:`src` go to
    :obj:`dst[offset[i]:offset[i] + count[i]]`, for every run in order.

    Rows are copied as bytes, so any dtype works; runs must not overlap
    (:class:`ValueError` otherwise), and :obj:`src` must not share memory
    with :obj:`dst`. If
    :obj:`src` is a CPU tensor, the write is synchronous. If it is a CUDA
    tensor, the call returns at once: a native worker thread copies the runs
    to the pinned :obj:`dst` on the CUDA stream that is current at the time
    of the call, which must not be the default stream (make it wait for the
    stream that produced :obj:`src`); :meth:`synchronize` waits until the rows
    have landed. Reads and writes take effect in call order.

    Args:
        src (torch.Tensor): The rows to write, of shape
            :obj:`[sum(count), num_channels]` (CPU or CUDA).
        offset (torch.Tensor): The first row of every run in :obj:`dst`, an
            int64 CPU tensor.
        count (torch.Tensor): The length of every run, an int64 CPU tensor.
        dst (torch.Tensor): The host table of shape
            :obj:`[num_rows, num_channels]` with the dtype of :obj:`src`;
            pinned if :obj:`src` is on a GPU.
    """
    op = 'write_async'
    for name, t in (('src', src), ('offset', offset), ('count', count),
                    ('dst', dst)):
        _check_tensor(t, op, name, cuda=name == 'src')
    offset, count = offset.contiguous(), count.contiguous()
    if _use_native(src):
        torch.ops.torch_autoscale.write_async(src, offset, count, dst)
        return

    _check_table(src, op, 'src')
    _check_table(dst, op, 'dst')
    _check_cpu(dst, op, 'dst')
    _check_like_src(dst, src, op, 'dst')
    _check_index(offset, op, 'offset')
    _check_index(count, op, 'count')
    _check_no_alias(src, dst, op, 'src', 'dst')
    _check_no_alias(offset, dst, op, 'offset', 'dst')
    _check_no_alias(count, dst, op, 'count', 'dst')
    total = _check_runs(offset, count, dst.size(0), op, 'dst')
    _check_disjoint_runs(offset, count, op)
    _check(src.size(0) == total, f"{op}: 'src' has {src.size(0)} rows but "
           f"the runs in 'count' sum to {total}")
    if src.device.type == 'cuda':
        _check(dst.is_pinned(), f"{op}: 'dst' must be in pinned memory "
               f"(allocate it with pin_memory=True)")
        _check_side_stream(src, op)

    dst.index_copy_(0, _run_rows(offset, count), src.to(dst.device))


def synchronize() -> None:
    r"""Waits until every :meth:`read_async` and :meth:`write_async` issued so
    far has finished, and raises the first error one of them hit on the
    worker thread (with its original message). Without the native extension
    every read and write is synchronous, and this does nothing."""
    if _native():
        torch.ops.torch_autoscale.synchronize()


if torch_autoscale.typing.WITH_NATIVE:

    @torch.library.register_fake('torch_autoscale::csr_transpose')
    def _(rowptr, col, num_cols):
        return (rowptr.new_empty(num_cols + 1), col.new_empty(col.numel()),
                col.new_empty(col.numel()))

    @torch.library.register_fake('torch_autoscale::relabel_one_hop')
    def _(rowptr, col, value, n_id, bipartite):
        # The numbers of kept edges and of nodes (batch + halo) depend on
        # the data.
        ctx = torch.library.get_ctx()
        num_edges, num_nodes = ctx.new_dynamic_size(), ctx.new_dynamic_size()
        num_rows = n_id.numel() if bipartite else num_nodes
        out_value = None
        if value is not None:
            out_value = value.new_empty((num_edges, ) + value.shape[1:])
        return (rowptr.new_empty(num_rows + 1), col.new_empty(num_edges),
                out_value, n_id.new_empty(num_nodes))


__all__ = [
    'relabel_one_hop',
    'relabel_one_hop_reference',
    'csr_transpose',
    'csr_transpose_reference',
    'read_async',
    'write_async',
    'synchronize',
]
