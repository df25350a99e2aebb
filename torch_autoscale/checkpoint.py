r"""Saving and resuming GAS training, histories included."""
import os
from typing import Any, Dict, Optional, Union

import torch
from torch import Tensor

from torch_autoscale.history import History
from torch_autoscale.history.history import copy_rows

PathLike = Union[str, 'os.PathLike[str]']

#: The format of the files written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 1

#: The rows copied at a time when a history is restored, so that a large
#: table is never materialized in memory as a whole.
CHUNK_ROWS = 1 << 20


def _histories(model: torch.nn.Module) -> Dict[str, History]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, History)
    }


def _clone(value: Any) -> Any:
    # Detaches loaded tensors from the memory-mapped checkpoint file, which a
    # later save to the same path would replace.
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, dict):
        return type(value)((k, _clone(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return value


def save_checkpoint(path: PathLike, model: torch.nn.Module,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    **extra: Any) -> None:
    r"""Writes everything needed to resume GAS training of :obj:`model` to
    one file (:func:`torch.save`): :obj:`model.state_dict()`, the state of
    :obj:`optimizer`, the keyword arguments :obj:`extra` (*e.g.*, the epoch
    and the best validation accuracy so far), and the *contents* of every
    :class:`~torch_autoscale.history.History` submodule of :obj:`model`,
    which :meth:`state_dict` leaves out on purpose.

    Tables are written straight from where they live, without an extra copy
    in memory (a :obj:`"disk"` table streams from its file through the page
    cache). The file is written next to :obj:`path` and then renamed, so an
    interrupted save leaves an earlier checkpoint at :obj:`path` intact.

    Args:
        path (str): The file to write.
        model (torch.nn.Module): The model, *e.g.*, a
            :class:`~torch_autoscale.nn.ScalableGNN`.
        optimizer (torch.optim.Optimizer, optional): Its optimizer.
            (default: :obj:`None`)
        **extra (optional): Further values to store and to return from
            :func:`load_checkpoint`; keep them to tensors and plain Python
            types (numbers, strings, lists, dicts), which load with
            :obj:`weights_only=True`. To resume with the same random numbers,
            store :obj:`rng=torch.get_rng_state()` and restore it with
            :func:`torch.set_rng_state`.

    Example:
        >>> save_checkpoint('last.pt', model, optimizer, epoch=epoch)
        >>> extra = load_checkpoint('last.pt', model, optimizer)
        >>> start = extra['epoch'] + 1
    """
    histories = {}
    for name, history in _histories(model).items():
        history._check_open()
        entry = dict(emb=history.emb.detach(),
                     shape=(history.num_nodes, history.channels),
                     dtype=str(history.dtype).replace('torch.', ''),
                     storage=history.storage)
        written = getattr(history, 'written', None)
        if isinstance(written, Tensor):  # SegmentHistory
            entry['written'] = written
        histories[name] = entry
    state = dict(
        version=CHECKPOINT_VERSION,
        model=model.state_dict(),
        optimizer=None if optimizer is None else optimizer.state_dict(),
        extra=extra,
        histories=histories,
    )

    path = os.fspath(path)
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: PathLike, model: torch.nn.Module,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    map_location: Any = 'cpu',
                    weights_only: bool = True) -> Dict[str, Any]:
    r"""Restores a checkpoint of :func:`save_checkpoint` into an existing
    :obj:`model` (and :obj:`optimizer`) and returns the :obj:`extra` values
    it was saved with.

    Every history is written in place, whatever its storage tier (a table
    may be restored into another tier than it was saved from, and into
    another storage dtype, to which it is cast). The file is memory-mapped
    and histories are copied :obj:`CHUNK_ROWS` rows at a time, so that
    restoring a large table needs little memory. Histories are checked
    against the checkpoint before anything is modified.

    Args:
        path (str): The file written by :func:`save_checkpoint`.
        model (torch.nn.Module): A model built like the saved one.
        optimizer (torch.optim.Optimizer, optional): An optimizer built like
            the saved one, over the parameters of :obj:`model`.
            (default: :obj:`None`, the optimizer state is not restored)
        map_location (optional): Where the checkpoint's tensors are loaded
            (see :func:`torch.load`). (default: :obj:`"cpu"`)
        weights_only (bool, optional): Whether to unpickle tensors and plain
            Python types only (see :func:`torch.load`); set it to
            :obj:`False` for a trusted file whose :obj:`extra` holds other
            objects. (default: :obj:`True`)

    Returns:
        The :obj:`extra` keyword arguments of :func:`save_checkpoint`.
    """
    state = torch.load(os.fspath(path), map_location=map_location, mmap=True,
                       weights_only=weights_only)
    if not isinstance(state, dict) or 'histories' not in state:
        raise ValueError(f"{os.fspath(path)!r} is not a checkpoint written "
                         f"by 'save_checkpoint'")
    if state.get('version') != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {os.fspath(path)!r} has format "
                         f"version {state.get('version')!r} but this "
                         f"version of torch_autoscale reads "
                         f"{CHECKPOINT_VERSION}")
    if optimizer is not None and state['optimizer'] is None:
        raise ValueError("the checkpoint holds no optimizer state; pass "
                         "'optimizer=None' or save the checkpoint with the "
                         "optimizer")

    saved: Dict[str, Dict[str, Any]] = state['histories']
    histories = _histories(model)
    missing = sorted(set(saved) - set(histories))
    if missing:
        raise ValueError(
            f"the checkpoint holds histories {missing} that the model lacks "
            f"(the model has {sorted(histories)}); build the model with the "
            f"same layers as the saved one")
    unsaved = sorted(set(histories) - set(saved))
    if unsaved:
        raise ValueError(
            f"the model's histories {unsaved} are not in the checkpoint (it "
            f"holds {sorted(saved)}); build the model with the same layers "
            f"as the saved one")
    for name, history in histories.items():
        history._check_open()
        shape = tuple(saved[name]['shape'])
        if shape != (history.num_nodes, history.channels):
            raise ValueError(
                f"history {name!r} has shape {shape} in the checkpoint but "
                f"{(history.num_nodes, history.channels)} in the model; "
                f"build the model with the same 'num_nodes' and widths as "
                f"the saved one")

    model.load_state_dict(state['model'])
    if optimizer is not None:
        optimizer.load_state_dict(_clone(state['optimizer']))
    with torch.no_grad():
        for name, history in histories.items():
            copy_rows(history.emb, saved[name]['emb'], CHUNK_ROWS)
            written = saved[name].get('written')
            if written is not None and isinstance(
                    getattr(history, 'written', None), Tensor):
                history.written.copy_(written)
    return _clone(state['extra'])
