import pytest
import torch

from torch_autoscale.history import STORAGES, HistoryPlacement
from torch_autoscale.plan import (
    TIERS,
    HistoryFate,
    LayerFate,
    ModelSpec,
    Placement,
)


def test_tiers_are_the_history_storages():
    assert TIERS is STORAGES


def test_placement_from_fates():
    fates = [HistoryFate('disk', 'float16'), HistoryFate('host', 'float32'),
             LayerFate(True), LayerFate(False), LayerFate(False)]
    placement = Placement.from_fates(fates)
    assert placement == Placement(('disk', 'host'), ('float16', 'float32'),
                                  (True, False, False))
    assert placement.history_fates == tuple(fates[:2])
    spec = ModelSpec(3, 8, 16, 4)
    assert placement.check(spec) is placement
    assert Placement.default(spec) == Placement(
        ('host', 'host'), ('float32', 'float32'), (False, False, False))
    with pytest.raises(ValueError, match='one flag per layer'):
        Placement(('host', 'host'), ('float32', 'float32'),
                  (False, )).check(spec)
    with pytest.raises(ValueError, match='unknown history dtype'):
        Placement(('host', 'host'), ('float32', 'int8'),
                  (False, ) * 3).check(spec)


def test_history_placement_keeps_only_what_the_tiers_use(tmp_path):
    mixed = Placement(('device', 'disk', 'host'),
                      ('float32', 'float16', 'bfloat16'), (False, ) * 4)
    h = mixed.history_placement('cpu', str(tmp_path))
    assert h == HistoryPlacement(
        ('device', 'disk', 'host'),
        (torch.float32, torch.float16, torch.bfloat16),
        torch.device('cpu'), str(tmp_path))
    host = Placement(('host', 'host'), ('float32', 'float32'), (False, ) * 3)
    h = host.history_placement('cuda', str(tmp_path))
    assert h.device is None and h.directory is None
    with pytest.raises(ValueError, match="'device'"):
        mixed.history_placement(None, str(tmp_path))
    with pytest.raises(ValueError, match='unknown history dtype'):
        Placement(('host', ), ('int8', ), (False, ) * 2).history_placement()
