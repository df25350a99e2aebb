r"""Tensors memory-mapped from files: which they are."""
import weakref
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

# The start address of every live file mapping (its storage's data pointer)
# and its size and kind: torch records no file name for a private mapping,
# and none for an unnamed (`O_TMPFILE`) file.
_MAPPED: Dict[int, Tuple[int, str]] = {}


def register_mapping(base: Tensor, kind: str) -> None:
    r"""Records that the storage of :obj:`base` is a file mapping of the
    given :obj:`kind` (*e.g.*, :obj:`"store"` or :obj:`"history"`), for as
    long as :obj:`base` lives (every view keeps it alive)."""
    storage = base.untyped_storage()
    _MAPPED[storage.data_ptr()] = (storage.nbytes(), kind)
    weakref.finalize(base, _MAPPED.pop, storage.data_ptr(), None)


def mapping_kind(t: Tensor) -> Optional[str]:
    r"""The kind :func:`register_mapping` recorded for the memory of
    :obj:`t` (a view of a mapping included), or :obj:`None` where :obj:`t`
    is held in memory (a copy of a mapping included)."""
    if not isinstance(t, Tensor) or t.device.type != 'cpu' or \
            t.layout != torch.strided:
        return None
    storage = t.untyped_storage()
    nbytes, kind = _MAPPED.get(storage.data_ptr(), (None, None))
    return kind if nbytes == storage.nbytes() else None
