import os

import pytest
import torch

from torch_autoscale.errors import StorageFullError
from torch_autoscale.store.buckets import RowBuckets, bucket_bounds


def test_bucket_bounds():
    counts = torch.tensor([3, 0, 9, 2, 2, 1, 0, 4])
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    bounds = bucket_bounds(rowptr, 5)
    assert bounds[0] == 0 and bounds[-1] == 8
    for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        total = int(counts[r0:r1].sum())
        assert total <= 5 or r1 - r0 == 1  # A long row is a range alone.
    assert bucket_bounds(torch.zeros(1, dtype=torch.long), 5).tolist() == \
        [0, 0]


def test_entries_come_back_by_range_in_order(tmp_path):
    gen = torch.Generator().manual_seed(0)
    num_rows = 40
    bounds = torch.tensor([0, 7, 8, 25, 40])
    columns = {'col': (torch.long, ()), 'x': (torch.float16, (3, ))}
    chunks = []
    with RowBuckets(str(tmp_path), bounds, columns) as sorter:
        for _ in range(5):
            row = torch.randint(num_rows, (23, ), generator=gen)
            col = torch.randint(10**12, (23, ), generator=gen)
            x = torch.randn(23, 3, generator=gen).half()
            sorter.append(row, col=col, x=x)
            chunks.append((row, col, x))
        row, col, x = (torch.cat(t) for t in zip(*chunks))
        seen = 0
        for b, (r0, r1, got_row, values) in enumerate(sorter):
            assert (r0, r1) == (int(bounds[b]), int(bounds[b + 1]))
            mask = (row >= r0) & (row < r1)
            # The range's entries in the order appended:
            assert torch.equal(got_row, row[mask])
            assert torch.equal(values['col'], col[mask])
            assert torch.equal(values['x'], x[mask])
            seen += int(mask.sum())
        assert seen == row.numel()
        assert os.listdir(sorter.dir) == []  # Files go as they are read.
    assert os.listdir(tmp_path) == []


def test_full_disk_is_a_named_error(tmp_path, monkeypatch):
    sorter = RowBuckets(str(tmp_path), torch.tensor([0, 4]),
                        {'col': (torch.long, ())})

    def full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr('builtins.open', full)
    with pytest.raises(StorageFullError, match='No room left'):
        sorter.append(torch.tensor([1, 2]), col=torch.tensor([5, 6]))
    monkeypatch.undo()
    sorter.close()
    assert os.listdir(tmp_path) == []
