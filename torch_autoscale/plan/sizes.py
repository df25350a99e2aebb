r"""Sizes in bytes: parsing budgets such as :obj:`"8GB"` and printing
sizes such as :obj:`"1.50 GiB"`."""
import math
import re
from typing import Optional, Union

ByteSize = Union[int, float, str]
r"""A number of bytes, or a string such as :obj:`"8GB"`."""


def parse_bytes(value: ByteSize, name: str = 'budget') -> int:
    r"""Bytes from an integer or a string such as :obj:`"8GB"`,
    :obj:`"512 MiB"` (decimal and binary units).

    Args:
        value (int or float or str): The size.
        name (str, optional): The argument named in error messages.
            (default: :obj:`"budget"`)

    Raises:
        ValueError: If :obj:`value` is negative, not finite or malformed.
    """
    if isinstance(value, bool):
        raise ValueError(f"'{name}' must be a number of bytes or a string "
                         f"such as '8GB' (got {value!r})")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{name}' must be a finite number of bytes "
                             f"(got {value!r}); pass None for no limit")
        if value < 0:
            raise ValueError(f"'{name}' must be non-negative (got {value})")
        return int(value)
    match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+|[0-9]+\.)\s*'
                         r'([kKmMgGtT]?)(i?)[bB]?\s*', str(value))
    if match is None:
        raise ValueError(f"'{name}' must be a number of bytes or a string "
                         f"such as '8GB' or '512MiB' (got {value!r})")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    power = ' KMGT'.index(unit.upper()) if unit else 0
    return int(float(number) * base**power)


def parse_budget(value: Optional[ByteSize], name: str) -> Optional[int]:
    r"""The bytes of a budget, or :obj:`None` for no limit (see
    :func:`parse_bytes`)."""
    return None if value is None else parse_bytes(value, name)


def format_bytes(num: float) -> str:
    r"""A human-readable size, *e.g.*, :obj:`"1.50 GiB"`.

    Args:
        num (float): The number of bytes.
    """
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(num) < 1024:
            return f'{num:.2f} {unit}' if unit != 'B' else f'{int(num)} B'
        num /= 1024
    return f'{num:.2f} TiB'


def format_budget(value: Optional[int]) -> str:
    r"""A budget in bytes as :func:`format_bytes` prints it, or
    :obj:`"unlimited"` for :obj:`None`."""
    return 'unlimited' if value is None else format_bytes(value)
