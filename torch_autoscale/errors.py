r"""The named errors of :obj:`torch_autoscale`.

Every fault the library detects at a boundary (data handed to a native op,
weights handed to METIS, values pushed into a history, a file read back, a
collective that does not finish) raises one of these. Each subclasses the
built-in exception a caller would catch without knowing the library
(:class:`ValueError` for bad input, :class:`OSError` for files,
:class:`RuntimeError` for a failed peer), so existing :obj:`except` clauses
keep working. See :doc:`/reliability` for what each fault gives.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor


def format_rows(rows: Optional[Sequence[int]], limit: int = 10) -> str:
    r"""The first :obj:`limit` of :obj:`rows` for an error message, *e.g.*,
    ``[3, 7, 9, ... (25 in all)]``."""
    if rows is None:
        return ''
    rows = list(rows)
    shown = ', '.join(str(r) for r in rows[:limit])
    more = f', ... ({len(rows)} in all)' if len(rows) > limit else ''
    return f'[{shown}{more}]'


class NonFiniteError(ValueError):
    r"""A tensor holds NaN or infinite values where finite ones are required
    (node features at preparation, values pushed into a history).

    Args:
        message (str): What was checked and how to fix it.
        rows (Sequence[int], optional): The rows (nodes) that hold a
            non-finite value, in the numbering of the caller.
            (default: :obj:`None`)
    """
    def __init__(self, message: str, rows: Optional[Sequence[int]] = None):
        super().__init__(message)
        self.rows = None if rows is None else list(rows)


class HistoryOverflowError(ValueError):
    r"""A finite value pushed or loaded into a history is outside the range
    of the history's dtype (*e.g.*, :obj:`1e5` into :obj:`float16`, whose
    largest value is 65504), so it would be stored as infinity.

    Args:
        message (str): What overflowed and how to fix it.
        rows (Sequence[int], optional): The rows that overflow.
            (default: :obj:`None`)
    """
    def __init__(self, message: str, rows: Optional[Sequence[int]] = None):
        super().__init__(message)
        self.rows = None if rows is None else list(rows)


class StorageFullError(OSError):
    r"""The space for a file-backed table (a :obj:`"disk"` or shared history)
    or a checkpoint could not be reserved: the file system is full or a file
    size limit is in force. Raised when the table is created, never as a
    :obj:`SIGBUS` on a later write."""


class CheckpointError(ValueError):
    r"""A checkpoint file cannot be loaded: it is truncated, corrupted (a
    record's checksum does not match), of another format version, or does
    not fit the model. Nothing in the model or optimizer has been changed
    when this is raised."""


class PartitionInputError(ValueError):
    r"""Graph or weights that METIS cannot take: negative or non-finite
    weights, integer weights whose sums overflow METIS's index type, or
    weights that cannot be rescaled into its range without losing every
    edge."""


class GraphStoreError(ValueError):
    r"""An on-disk graph store cannot be opened or read: its manifest is
    missing, damaged or of another format version, or one of its files is
    missing, truncated or does not match its recorded checksum. Nothing is
    read from a store that fails these checks."""


class NodeOrderError(ValueError):
    r"""Per-node tensors in two different node orders were combined: a
    model output in the permuted order of a
    :class:`~torch_autoscale.loader.PartitionedData` (that of its
    :obj:`data`) with a mask or label of the graph that was passed in (the
    original order), or the other way round. The result would be silently
    wrong; map one of them with
    :meth:`~torch_autoscale.loader.PartitionedData.to_original` or
    :meth:`~torch_autoscale.loader.PartitionedData.to_permuted`."""


class DistributedTimeoutError(RuntimeError):
    r"""A collective operation did not finish within the timeout: a peer
    process stopped answering (stalled or dead).

    Args:
        message (str): What timed out and how to fix it.
        rank (int, optional): The rank that stopped answering, where known.
            (default: :obj:`None`)
    """
    def __init__(self, message: str, rank: Optional[int] = None):
        super().__init__(message)
        self.rank = rank


_FINITE_CHECKS = True


def set_finite_checks(enabled: bool) -> None:
    r"""Turns the checks for NaN and infinite values (at preparation and on
    every push into a history) on or off for the whole process. They are on
    by default; their cost on a GAS epoch is measured in
    ``benchmark/results/reliability.md``. Turn them off only for
    measurements, like :func:`torch.autograd.set_detect_anomaly` the other
    way round.

    Args:
        enabled (bool): Whether to check.
    """
    global _FINITE_CHECKS
    _FINITE_CHECKS = bool(enabled)


def finite_checks_enabled() -> bool:
    r"""Whether NaN and infinite values are checked for (see
    :func:`set_finite_checks`)."""
    return _FINITE_CHECKS


def non_finite_rows(x: Tensor) -> Tensor:
    r"""The indices of the rows of :obj:`x` (along its first dimension) that
    hold at least one NaN or infinite value, or an empty tensor.

    Args:
        x (torch.Tensor): A tensor; integer tensors have no such rows.
    """
    if not (x.is_floating_point() or x.is_complex()) or x.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    bad = ~torch.isfinite(x)
    if x.dim() > 1:
        bad = bad.reshape(x.size(0), -1).any(dim=1)
    return bad.nonzero().view(-1).cpu()


def check_finite(x: Tensor, what: str, fix: str,
                 index: Optional[Tensor] = None) -> None:
    r"""Raises :class:`NonFiniteError` naming the rows of :obj:`x` that hold
    NaN or infinite values (nothing when :func:`set_finite_checks` turned
    the checks off).

    Args:
        x (torch.Tensor): The values to check.
        what (str): What :obj:`x` is, for the message (*e.g.*,
            :obj:`"History.push: 'x'"`).
        fix (str): How to fix it, for the message.
        index (torch.Tensor, optional): The caller's numbering of the rows of
            :obj:`x` (*e.g.*, node ids); the error reports these.
            (default: :obj:`None`)
    """
    if not _FINITE_CHECKS:
        return
    if not (x.is_floating_point() or x.is_complex()) or x.numel() == 0:
        return
    if bool(torch.isfinite(x).all()):  # One reduction on the fast path.
        return
    rows = non_finite_rows(x)
    if index is not None:
        rows = index.cpu()[rows]
    rows = rows.tolist()
    raise NonFiniteError(
        f"{what} holds NaN or infinite values in {len(rows)} row(s) "
        f"{format_rows(rows)}; {fix}", rows=rows)


__all__ = [
    'NonFiniteError',
    'HistoryOverflowError',
    'StorageFullError',
    'CheckpointError',
    'NodeOrderError',
    'GraphStoreError',
    'PartitionInputError',
    'DistributedTimeoutError',
    'non_finite_rows',
    'check_finite',
    'format_rows',
    'set_finite_checks',
    'finite_checks_enabled',
]
