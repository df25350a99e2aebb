import pytest
import torch

from torch_autoscale.history import HistoryPlacement


def test_resolve():
    p = HistoryPlacement.resolve(2)
    assert p.storages == ('host', 'host') and p.device is None
    assert p.dtypes == (torch.get_default_dtype(), ) * 2
    p = HistoryPlacement.resolve(2, storage=['disk', None],
                                 dtype=[torch.float16, None], directory='d')
    assert p.storages == ('disk', 'host') and p.directory == 'd'
    assert p.table_directory(0) == 'd' and p.table_directory(1) is None
    assert p.dtypes[0] == torch.float16
    p = HistoryPlacement.resolve(1, device='meta')  # A device: stored there.
    assert p.storages == ('device', ) and p.table_device(0).type == 'meta'
    assert HistoryPlacement.resolve(2, directory='d').directory is None


def test_bad_placements():
    with pytest.raises(ValueError, match="'history_storage' lists 1 entries"):
        HistoryPlacement.resolve(2, storage=['host'], prefix='history_')
    with pytest.raises(ValueError, match="'storage' must be one of"):
        HistoryPlacement.resolve(1, storage='gpu')
    with pytest.raises(ValueError, match="'device' is missing"):
        HistoryPlacement.resolve(1, storage='device')
    with pytest.raises(ValueError, match='keeps every history off it'):
        HistoryPlacement.resolve(1, storage='host', device='meta')
    with pytest.raises(ValueError, match="must hold dtype entries"):
        HistoryPlacement.resolve(2, dtype=[torch.float16, 'x'])
    with pytest.raises(ValueError, match='floating point'):
        HistoryPlacement(('host', ), (torch.int64, ))
    with pytest.raises(ValueError, match='one entry per table'):
        HistoryPlacement(('host', ), ())
    with pytest.raises(ValueError, match='places 1 tables but 2'):
        HistoryPlacement.resolve(1).check(2)
