r"""Argument checks shared across the package."""
import operator
from typing import Any, Optional

from torch import Tensor


def check_int(value: Any, name: str, minimum: Optional[int] = None,
              optional: bool = False, fix: str = '') -> Optional[int]:
    r"""Returns :obj:`value` as an :obj:`int` after checking that it is an
    integer (anything with :meth:`__index__` but a :obj:`bool`; a float is
    not truncated) of at least :obj:`minimum`, raising a :class:`ValueError`
    that names :obj:`name` otherwise.

    Args:
        value (Any): The argument.
        name (str): The argument's name, for the error messages.
        minimum (int, optional): The smallest value allowed.
            (default: :obj:`None`, any)
        optional (bool, optional): Whether :obj:`None` is allowed (and
            returned). (default: :obj:`False`)
        fix (str, optional): Appended to the message of a value below
            :obj:`minimum`. (default: :obj:`""`)
    """
    if value is None and optional:
        return None
    try:
        if isinstance(value, bool):  # A flag is not a count.
            raise TypeError
        value = operator.index(value)
    except TypeError:
        what = 'an integer or None' if optional else 'an integer'
        raise ValueError(f"'{name}' must be {what} (got "
                         f"{value!r})") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"'{name}' must be at least {minimum} (got "
                         f"{value}){'; ' + fix if fix else ''}")
    return value


def out_of_range(index: Tensor, size: int) -> Optional[int]:
    r"""An entry of the integer tensor :obj:`index` outside of
    :obj:`[0, size)` (the smallest if one is negative, else the largest),
    or :obj:`None` if every entry lies inside; for error messages that
    name the offending id."""
    if index.numel() == 0:
        return None
    low, high = int(index.min()), int(index.max())
    if low < 0:
        return low
    return high if high >= size else None
