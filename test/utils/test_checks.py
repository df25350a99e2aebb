import pytest
import torch

from torch_autoscale.utils.checks import check_int, out_of_range


def test_check_int():
    assert check_int(3, 'k', 1) == 3
    assert check_int(torch.tensor(4), 'k') == 4
    assert check_int(None, 'k', optional=True) is None
    with pytest.raises(ValueError, match="'k' must be an integer \\(got"):
        check_int(2.0, 'k')
    with pytest.raises(ValueError, match="'k' must be an integer or None"):
        check_int(True, 'k', optional=True)
    with pytest.raises(ValueError, match="'k' must be at least 1 \\(got 0\\); "
                       "pass more"):
        check_int(0, 'k', 1, fix='pass more')


def test_out_of_range():
    assert out_of_range(torch.tensor([0, 3, 4]), 5) is None
    assert out_of_range(torch.empty(0, dtype=torch.long), 0) is None
    assert out_of_range(torch.tensor([[0, 7], [-2, 9]]), 5) == -2
    assert out_of_range(torch.tensor([0, 7, 9]), 5) == 9
