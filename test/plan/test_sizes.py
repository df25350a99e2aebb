import pytest

from torch_autoscale.plan import format_bytes, parse_bytes
from torch_autoscale.plan.sizes import format_budget, parse_budget


def test_parse_and_format_bytes():
    assert parse_bytes('8GB') == 8 * 10**9
    assert parse_bytes('512 MiB') == 512 * 2**20
    assert parse_bytes('1.5k') == 1500
    assert parse_bytes(123) == 123
    assert format_bytes(1536) == '1.50 KiB'
    for bad in ('8 parsecs', -1, True):
        with pytest.raises(ValueError, match='budget'):
            parse_bytes(bad)


def test_parse_bytes_rejects_non_finite_and_malformed():
    for bad in (float('nan'), float('inf'), '1.2.3', '.', 'GB', None):
        with pytest.raises(ValueError, match="'device_budget'"):
            parse_bytes(bad, 'device_budget')
    assert parse_bytes('.5G') == 5 * 10**8
    assert parse_bytes(10**400) == 10**400  # No float conversion of ints.


def test_budgets():
    assert parse_budget(None, 'host_budget') is None
    assert parse_budget('1KiB', 'host_budget') == 1024
    with pytest.raises(ValueError, match="'host_budget'"):
        parse_budget('lots', 'host_budget')
    assert format_budget(None) == 'unlimited'
    assert format_budget(2**30) == '1.00 GiB'
