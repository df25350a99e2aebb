r"""Moving entries to their rows when the rows are larger than memory: an
external bucket sort.

Writing every entry of a chunk straight into its row of a memory-mapped
array touches pages all over the array; once the array outgrows the page
cache, every write reads and writes back a page (a graph of a billion
entries then moves terabytes). :class:`RowBuckets` instead appends every
entry, in order, to the temporary file of its range of rows (sequential
writes), then hands out one range at a time, small enough to sort in
memory and write out sequentially. Every step reads and writes each entry
once more, in large sequential pieces.
"""
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, Iterator, Tuple

import numpy as np
import torch
from torch import Tensor

from torch_autoscale.errors import StorageFullError
from torch_autoscale.utils.sparse import row_blocks

BUCKET_ENTRIES = 1 << 25
r"""The most entries of one range of rows of :class:`RowBuckets` by
default (the memory of a step over one bucket is a few times this)."""


def bucket_bounds(rowptr: Tensor, max_entries: int) -> Tensor:
    r"""Boundaries :obj:`[0, b_1, ..., num_rows]` of ranges of rows that
    hold at most :obj:`max_entries` entries each (a row is never split, so
    a longer row is a range of its own), from the row pointers of the
    entries, :obj:`rowptr`."""
    starts = [r0 for r0, _ in row_blocks(rowptr, max_entries)]
    return torch.tensor((starts or [0]) + [rowptr.numel() - 1],
                        dtype=torch.long)


class RowBuckets:
    r"""Entries :obj:`(row, values...)` grouped by ranges of rows in
    temporary files: :meth:`append` adds a chunk (every entry to the file of
    its range, in the order given), :meth:`take` reads one range back (its
    entries in the order they were appended; the files are removed as they
    are read), :meth:`close` removes what is left. Rows are stored relative
    to the start of their range, as :obj:`int32` where a range has fewer
    than :math:`2^{31}` rows.

    Args:
        folder (str): The folder of the temporary files (an exclusive
            temporary folder is made inside it).
        bounds (torch.Tensor): The boundaries of the ranges of rows, as
            :func:`bucket_bounds` returns them.
        columns (dict): The values of every entry, by name: their dtype and
            the shape of one entry's value (:obj:`()` for a scalar).
    """
    def __init__(self, folder: str, bounds: Tensor,
                 columns: Dict[str, Tuple[torch.dtype, Tuple[int, ...]]]):
        self.bounds = bounds.long().cpu()
        self.columns = dict(columns)
        self.dir = tempfile.mkdtemp(prefix='.buckets-', dir=folder)
        widths = self.bounds[1:] - self.bounds[:-1]
        small = widths.numel() > 0 and int(widths.max()) < 2**31
        self.row_dtype = torch.int32 if small else torch.long
        self.sizes = [0] * (self.bounds.numel() - 1)

    @property
    def num_buckets(self) -> int:
        r"""The number of ranges of rows."""
        return len(self.sizes)

    def _file(self, b: int, name: str) -> str:
        return osp.join(self.dir, f'{b}.{name}')

    def _write(self, path: str, t: Tensor) -> None:
        data = t.contiguous().numpy().tobytes()
        try:
            with open(path, 'ab') as f:
                f.write(data)
        except OSError as e:
            if e.errno in (28, 122):  # ENOSPC, EDQUOT.
                raise StorageFullError(
                    f"No room left in {osp.dirname(self.dir)!r} for the "
                    f"temporary files of an external sort ({len(data)} more "
                    f"bytes); free space there or pass another folder") \
                    from e
            raise

    def append(self, row: Tensor, **values: Tensor) -> None:
        r"""Appends a chunk of entries: their rows (in
        :obj:`[0, num_rows)`) and a tensor per column."""
        row = row.contiguous()  # A column of an edge array, often strided.
        bucket = torch.searchsorted(self.bounds, row, right=True) - 1
        order = torch.argsort(bucket, stable=True)
        counts = torch.bincount(bucket, minlength=self.num_buckets).tolist()
        local = (row - self.bounds[bucket])[order].to(self.row_dtype)
        values = {k: values[k][order] for k in self.columns}
        start = 0
        for b, c in enumerate(counts):
            if c == 0:
                continue
            end = start + c
            self._write(self._file(b, 'row'), local[start:end])
            for name, t in values.items():
                self._write(self._file(b, name), t[start:end])
            self.sizes[b] += c
            start = end

    def _read(self, b: int, name: str, dtype: torch.dtype,
              shape: Tuple[int, ...]) -> Tensor:
        path = self._file(b, name)
        if self.sizes[b] == 0:
            return torch.empty((0, ) + tuple(shape), dtype=dtype)
        array = np.fromfile(path, dtype=torch.empty(0, dtype=dtype)
                            .numpy().dtype)
        os.remove(path)
        return torch.from_numpy(array).view((self.sizes[b], ) + tuple(shape))

    def take(self, b: int) -> Tuple[int, int, Tensor, Dict[str, Tensor]]:
        r"""The range :obj:`b`: its first row, its end, the rows of its
        entries (absolute, :obj:`int64`) and their values, in the order
        they were appended. Its files are removed."""
        r0, r1 = int(self.bounds[b]), int(self.bounds[b + 1])
        row = self._read(b, 'row', self.row_dtype, ()).long() + r0
        values = {name: self._read(b, name, dtype, shape)
                  for name, (dtype, shape) in self.columns.items()}
        return r0, r1, row, values

    def __iter__(self) -> Iterator[Tuple[int, int, Tensor,
                                         Dict[str, Tensor]]]:
        for b in range(self.num_buckets):
            yield self.take(b)

    def close(self) -> None:
        r"""Removes the temporary files."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> 'RowBuckets':
        return self

    def __exit__(self, *args) -> None:
        self.close()
