r"""Saving and resuming GAS training, histories included.

A checkpoint is one :func:`torch.save` file. Format version 2 adds an
integrity record: a CRC-32 of every tensor (model state, optimizer state,
history tables, tensors in :obj:`extra`), of its dtype and shape, and of the
file's non-tensor structure (keys, hyper-parameters, plain :obj:`extra`
values). :func:`load_checkpoint` verifies all of it before it changes
anything and raises :class:`~torch_autoscale.errors.CheckpointError` naming
the record that does not match. Files of version 1 (written without
checksums) still load, unverified, with a logged warning; other versions
are refused.
"""
import errno
import logging
import os
import re
import secrets
import socket
import stat
import zlib
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from torch_autoscale.errors import (
    CheckpointError,
    HistoryOverflowError,
    StorageFullError,
    format_rows,
)
from torch_autoscale.history import History, SegmentHistory
from torch_autoscale.utils.fd import fd_path, supports_fd_paths

PathLike = Union[str, 'os.PathLike[str]']

log = logging.getLogger(__name__)

#: The format of the files written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 2

#: Older formats that :func:`load_checkpoint` still reads (without
#: verification).
_UNVERIFIED_VERSIONS = (1, )

#: The rows copied at a time when a history is restored, so that a large
#: table is never materialized in memory as a whole.
CHUNK_ROWS = 1 << 20

#: The bytes read at a time when a tensor is checksummed or checked for
#: overflow, so that a large (memory-mapped) table is never materialized.
CHECK_BYTES = 1 << 26

#: The most overflowing rows a :class:`HistoryOverflowError` lists.
_MAX_ROWS = 1000

#: Optimizer state entries that are element-wise buffers of their parameter
#: (its shape) in :mod:`torch.optim`.
_ELEMENTWISE_STATE = frozenset([
    'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'momentum_buffer',
    'square_avg', 'grad_avg', 'acc_delta', 'sum', 'prev', 'step_size', 'ax',
])

# Temporary files: '.<basename>.<host>-<pid>.<random>.tmp' in the folder of
# the checkpoint. The random part makes the name unpredictable; host and pid
# let a later save tell the leftovers of dead processes.
_HOST = format(zlib.crc32(socket.gethostname().encode()), '08x')
_TEMP_TAIL = re.compile(r'([0-9a-f]{8})-([0-9]+)\.[0-9a-f]{16}\.tmp\Z')


# Integrity records ##########################################################

def _check_args(model: Any, optimizer: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module (got "
                        f"{type(model).__name__})")
    if optimizer is not None and not isinstance(optimizer,
                                                torch.optim.Optimizer):
        raise TypeError(f"'optimizer' must be a torch.optim.Optimizer or "
                        f"None (got {type(optimizer).__name__})")


def _histories(model: torch.nn.Module) -> Dict[str, Any]:
    r"""The tables of :obj:`model` by name: every
    :class:`~torch_autoscale.history.History` and
    :class:`~torch_autoscale.history.SegmentHistory` (not the history a
    segment table wraps), each with :meth:`state` and :meth:`load_state`."""
    out: Dict[str, Any] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f'{owner}.') for owner in out
               if isinstance(out[owner], SegmentHistory)):
            continue
        if isinstance(module, (History, SegmentHistory)):
            out[name] = module
    return out


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


_PLAIN = (str, bytes, int, float, complex, bool, type(None), torch.dtype,
          torch.device)


def _skeleton(value: Any, out: List[str]) -> None:
    # A canonical text of everything but tensor data: container types, keys,
    # plain values, and the dtype and shape of every tensor.
    if isinstance(value, Tensor):
        out.append(f'T({value.dtype},{tuple(value.shape)})')
    elif isinstance(value, Mapping):
        out.append('{')
        for key, item in value.items():
            _skeleton(key, out)
            out.append(':')
            _skeleton(item, out)
            out.append(',')
        out.append('}')
        metadata = getattr(value, '_metadata', None)  # Of state dicts.
        if isinstance(metadata, Mapping):
            _skeleton(metadata, out)
    elif isinstance(value, (list, tuple)):
        out.append('[' if isinstance(value, list) else '(')
        for item in value:
            _skeleton(item, out)
            out.append(',')
        out.append(']' if isinstance(value, list) else ')')
    elif isinstance(value, _PLAIN):
        out.append(repr(value))
    else:  # Objects of weights_only=False files: their type only.
        out.append(f'<{type(value).__module__}.{type(value).__qualname__}>')


def _skeleton_crc(state: Dict[str, Any]) -> int:
    out: List[str] = []
    _skeleton({k: v for k, v in state.items() if k != 'integrity'}, out)
    return zlib.crc32(''.join(out).encode('utf-8', 'backslashreplace'))


def _tensors(value: Any, name: str) -> List[Tuple[str, Tensor]]:
    # Every tensor of a nested structure, in a fixed order, with its path.
    if isinstance(value, Tensor):
        return [(name, value)]
    out = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            out += _tensors(item, f'{name}/{key}')
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            out += _tensors(item, f'{name}/{i}')
    return out


def _records(state: Dict[str, Any]) -> List[Tuple[str, Tensor]]:
    return [record for key in ('model', 'optimizer', 'extra', 'histories')
            for record in _tensors(state.get(key), key)]


def _scan(tensor: Tensor,
          on_chunk: Optional[Callable[[int, Tensor], None]] = None) -> int:
    r"""The CRC-32 of :obj:`tensor`'s dtype, shape and values (row-major),
    read :obj:`CHECK_BYTES` at a time; :obj:`on_chunk(first_row, rows)` sees
    every chunk."""
    crc = zlib.crc32(f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
    t = tensor.detach()
    if t.is_quantized:
        t = t.int_repr()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.device.type == 'meta' or t.numel() == 0:
        return crc
    if t.dim() == 0:
        t = t.reshape(1)
    row_bytes = max(1, t[0].numel() * t.element_size())
    step = max(1, CHECK_BYTES // row_bytes)
    for start in range(0, t.size(0), step):
        chunk = t[start:start + step]
        if on_chunk is not None:
            on_chunk(start, chunk)
        chunk = chunk.resolve_conj().resolve_neg().cpu().contiguous()
        crc = zlib.crc32(chunk.reshape(-1).view(torch.uint8).numpy(), crc)
    return crc


def _integrity(state: Dict[str, Any]) -> Dict[str, Any]:
    return dict(skeleton=_skeleton_crc(state),
                records=[[name, _scan(t)] for name, t in _records(state)])


# Writing ####################################################################

def _write(fd: int, data: memoryview) -> None:
    r"""Writes all of :obj:`data` to :obj:`fd` (the one place a checkpoint's
    bytes reach the file)."""
    while len(data) > 0:
        data = data[os.write(fd, data):]


class _Writer:
    r"""The file object :func:`torch.save` writes to. It remembers the first
    error, which :func:`torch.save` would turn into a :class:`RuntimeError`,
    and refuses every later write."""
    def __init__(self, fd: int):
        self.fd = fd
        self.error: Optional[BaseException] = None

    def write(self, data: Any) -> int:
        if self.error is not None:
            raise OSError(errno.EIO, 'an earlier write failed')
        data = memoryview(data).cast('B')
        try:
            _write(self.fd, data)
        except BaseException as e:
            self.error = e
            raise
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self.fd, offset, whence)

    def flush(self) -> None:
        pass


class _Folder:
    r"""The folder of a checkpoint, held open (POSIX) so that every name is
    resolved in it even if its path changes meanwhile."""
    def __init__(self, path: str):
        self.path = path
        self.fd: Optional[int] = None
        if os.name == 'posix' and os.open in os.supports_dir_fd:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY
                              | getattr(os, 'O_CLOEXEC', 0))

    def name(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.path, name)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def fsync(self) -> None:
        if self.fd is None:
            return
        try:
            os.fsync(self.fd)
        except OSError as e:  # File systems without directory fsync.
            if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
                raise

    def unlink(self, name: str) -> None:
        try:
            os.unlink(self.name(name), dir_fd=self.fd)
        except FileNotFoundError:
            pass


def _temp_prefix(base: str) -> str:
    return f'.{base[:128]}.'


def _temp_name(base: str) -> str:
    r"""A fresh, unpredictable temporary name for a checkpoint :obj:`base`."""
    return (f'{_temp_prefix(base)}{_HOST}-{os.getpid()}.'
            f'{secrets.token_hex(8)}.tmp')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # E.g., another user's process.
        return True
    return True


def _remove_stale(folder: _Folder, base: str) -> None:
    r"""Removes the temporaries that saves to :obj:`base` by dead processes
    of this machine left (killed before they could clean up); files of
    other users, other machines and live processes are left alone."""
    if os.name != 'posix':  # os.kill(pid, 0) is no probe on Windows.
        return
    prefix = _temp_prefix(base)
    try:
        names = os.listdir(folder.fd if folder.fd is not None
                           else folder.path)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        match = _TEMP_TAIL.match(name, len(prefix))
        if match is None or match.group(1) != _HOST:
            continue
        pid = int(match.group(2))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            st = os.lstat(folder.name(name), dir_fd=folder.fd)
            if (st.st_uid == os.geteuid()
                    and (st.st_mode & 0o170000) == 0o100000):  # S_IFREG
                folder.unlink(name)
                log.info(f"removed {name!r}, left in {folder.path!r} by a "
                         f"save that was killed")
        except OSError:
            pass


def _create_named(folder: _Folder, base: str) -> Tuple[int, str]:
    # O_EXCL: never opens an existing name, a symbolic link included.
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
             | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
             | getattr(os, 'O_BINARY', 0))
    for _ in range(100):
        name = _temp_name(base)
        try:
            return os.open(folder.name(name), flags, 0o666,
                           dir_fd=folder.fd), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name for "
                          f"{base!r} in {folder.path!r}")


def _tmpfile_supported(folder: _Folder) -> bool:
    return (getattr(os, 'O_TMPFILE', None) is not None
            and folder.fd is not None and supports_fd_paths())


def _create_unnamed(folder: _Folder) -> Optional[int]:
    r"""An unnamed file in :obj:`folder` (Linux' :obj:`O_TMPFILE`): a
    process killed while writing it leaves nothing behind. :obj:`None`
    where the file system does not support it."""
    try:
        return os.open('.', os.O_TMPFILE | os.O_WRONLY
                       | getattr(os, 'O_CLOEXEC', 0), 0o666, dir_fd=folder.fd)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL,
                       errno.ENOENT, errno.EXDEV):
            return None
        raise


def _link_unnamed(fd: int, folder: _Folder, base: str) -> Optional[str]:
    r"""Gives the unnamed file :obj:`fd` a fresh temporary name (linkat
    never replaces an existing name); :obj:`None` if it cannot be linked."""
    for _ in range(100):
        name = _temp_name(base)
        try:
            os.link(fd_path(fd), name, dst_dir_fd=folder.fd,
                    follow_symlinks=True)
            return name
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM,
                           errno.EOPNOTSUPP, errno.EACCES):
                return None
            raise
    raise FileExistsError(errno.EEXIST, f"no free temporary name for "
                          f"{base!r} in {folder.path!r}")


def _save_to(fd: int, state: Dict[str, Any]) -> None:
    writer = _Writer(fd)
    try:
        torch.save(state, writer)
    except BaseException:
        if writer.error is not None:  # Not the RuntimeError of torch.save.
            raise writer.error
        raise
    os.fsync(fd)


def _write_and_rename(state: Dict[str, Any], folder: _Folder,
                      base: str) -> None:
    _remove_stale(folder, base)
    name = None
    if _tmpfile_supported(folder):
        fd = _create_unnamed(folder)
        if fd is not None:
            try:
                _save_to(fd, state)
                name = _link_unnamed(fd, folder, base)
            finally:
                os.close(fd)
            if name is None:
                log.debug(f"cannot link an O_TMPFILE file in "
                          f"{folder.path!r}; writing a named temporary")
    try:
        if name is None:
            fd, name = _create_named(folder, base)
            try:
                _save_to(fd, state)
            finally:
                os.close(fd)
        os.replace(folder.name(name), folder.name(base),
                   src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
    except BaseException:
        if name is not None:
            folder.unlink(name)
        raise


def _atomic_save(state: Dict[str, Any], path: str) -> None:
    folder_path, base = os.path.split(os.path.abspath(path))
    if not base:
        raise ValueError(f"'path' {path!r} names a folder; pass a file name")
    folder = _Folder(folder_path)
    try:
        try:
            _write_and_rename(state, folder, base)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise StorageFullError(
                    e.errno, f"cannot write checkpoint {path!r}: "
                    f"{e.strerror}; free space in {folder_path!r} or save "
                    f"elsewhere; the previous file at that path is "
                    f"unchanged") from e
            raise
        folder.fsync()  # Makes the rename itself durable.
    finally:
        folder.close()


def save_checkpoint(path: PathLike, model: torch.nn.Module,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    **extra: Any) -> None:
    r"""Writes everything needed to resume GAS training of :obj:`model` to
    one file (:func:`torch.save`): :obj:`model.state_dict()`, the state of
    :obj:`optimizer`, the keyword arguments :obj:`extra` (*e.g.*, the epoch
    and the best validation accuracy so far), and the *contents* of every
    :class:`~torch_autoscale.history.History` submodule of :obj:`model`,
    which :meth:`state_dict` leaves out on purpose, together with a CRC-32
    checksum of every tensor and of the file's structure.

    Tables are written straight from where they live, without an extra copy
    in memory (a :obj:`"disk"` table streams from its file through the page
    cache; it is read twice, once for its checksum).

    The file is replaced atomically: the checkpoint is written to a new file
    in the folder of :obj:`path`, flushed to disk (:func:`os.fsync`), renamed
    over :obj:`path` (:func:`os.replace`), and the folder is flushed. On
    Linux the new file has no name until it is complete (:obj:`O_TMPFILE`),
    so a process killed mid-save leaves nothing behind; elsewhere it is
    created exclusively under an unpredictable hidden name
    (:obj:`.<name>.<host>-<pid>.<random>.tmp`), removed on every error, and
    removed by the next save to :obj:`path` if the saving process was
    killed. An existing file or symbolic link at any name is never followed
    or overwritten, except :obj:`path` itself, which is replaced (a link
    there is replaced, not followed). A failed save leaves the previous
    checkpoint at :obj:`path` intact; a full disk raises
    :class:`~torch_autoscale.errors.StorageFullError`.

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
    _check_args(model, optimizer)
    histories = {}
    for name, history in _histories(model).items():
        histories[name] = history.state()
    state = dict(
        version=CHECKPOINT_VERSION,
        model=model.state_dict(),
        optimizer=None if optimizer is None else optimizer.state_dict(),
        optimizer_class=(None if optimizer is None else
                         type(optimizer).__qualname__),
        extra=extra,
        histories=histories,
    )
    state['integrity'] = _integrity(state)
    _atomic_save(state, os.fspath(path))


# Reading ####################################################################

def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path!r}: {what}; nothing was "
                           f"loaded")


def _read(path: str, map_location: Any, weights_only: bool) -> Any:
    if isinstance(map_location, (str, torch.device)) and \
            torch.device(map_location).type == 'meta':
        raise ValueError("'map_location' must not be 'meta': meta tensors "
                         "hold no data to verify or load; load to 'cpu'")
    # Missing or unreadable: the OSError as is. O_NONBLOCK: a FIFO (or a
    # device) planted at the path must not block the load forever.
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _fail(path, "is not a regular file (a FIFO, a device or a "
                        "folder)")
    finally:
        os.close(fd)
    try:
        return torch.load(path, map_location=map_location, mmap=True,
                          weights_only=weights_only)
    except Exception as e:
        cause = f'({type(e).__name__}: {str(e)[:300]})'
        if weights_only and 'weights_only' in str(e).lower():
            raise _fail(path, f"its 'extra' holds objects other than "
                        f"tensors and plain Python values, which "
                        f"'weights_only=True' refuses; pass "
                        f"'weights_only=False' only if you trust the file, "
                        f"as it runs arbitrary code {cause}") from e
        raise _fail(path, f"cannot be read, it is truncated, corrupted or "
                    f"not a torch.save file {cause}") from e


def _overflow_check(history: History, name: str, src: Tensor
                    ) -> Tuple[Optional[Callable[[int, Tensor], None]],
                               Callable[[], None]]:
    r"""A chunk callback of :func:`_scan` collecting the rows of :obj:`src`
    that are finite but overflow the storage dtype of :obj:`history`, and
    the function that raises for them."""
    dtype = history.dtype
    if (not src.is_floating_point() or not dtype.is_floating_point or
            torch.finfo(dtype).max >= torch.finfo(src.dtype).max):
        return None, lambda: None
    rows: List[int] = []
    total = [0]

    def on_chunk(start: int, chunk: Tensor) -> None:
        bad = torch.isinf(chunk.to(dtype)) & torch.isfinite(chunk)
        bad = bad.reshape(chunk.size(0), -1).any(dim=1).nonzero().view(-1)
        total[0] += bad.numel()
        if len(rows) < _MAX_ROWS:
            rows.extend((bad[:_MAX_ROWS - len(rows)] + start).tolist())

    def check() -> None:
        if total[0] > 0:
            raise HistoryOverflowError(
                f"history {name!r} is stored in {dtype}, but the "
                f"checkpoint's {src.dtype} table holds finite values "
                f"beyond its range (largest {torch.finfo(dtype).max:g}) in "
                f"{total[0]} row(s) {format_rows(rows)}, which would be "
                f"stored as infinity; build the model with a wider "
                f"'history_dtype' (e.g. torch.float32 or torch.bfloat16); "
                f"nothing was loaded", rows=rows)
    return on_chunk, check


def _verify_structure(path: str, state: Dict[str, Any]) -> List[Any]:
    r"""Checks the checksum of everything but tensor data and returns the
    recorded checksums of the tensors."""
    integrity = state.get('integrity')
    records = (integrity.get('records')
               if isinstance(integrity, Mapping) else None)
    if not isinstance(records, (list, tuple)) or not all(
            isinstance(r, (list, tuple)) and len(r) == 2
            and isinstance(r[0], str) and isinstance(r[1], int)
            for r in records):
        raise _fail(path, "its integrity record is missing or damaged")
    if integrity.get('skeleton') != _skeleton_crc(state):
        raise _fail(path, "the checksum of its structure (keys, "
                    "hyper-parameters, plain values, tensor shapes and "
                    "dtypes) does not match: the file is corrupted")
    return list(records)


def _verify_records(path: str, state: Dict[str, Any],
                    histories: Dict[str, History],
                    expected: Optional[List[Any]]) -> None:
    r"""Checks the checksum of every tensor against :obj:`expected` (unless
    :obj:`None`) and the range of every history table, reading each tensor
    once, chunk by chunk."""
    verify = expected is not None
    records = _records(state)
    if verify and [r[0] for r in expected] != [r[0] for r in records]:
        raise _fail(path, "its tensors do not match its integrity record: "
                    "the file is corrupted")
    for i, (name, tensor) in enumerate(records):
        on_chunk, check = None, lambda: None
        parts = name.split('/')
        if parts[0] == 'histories' and parts[-1] == 'emb':
            key = '/'.join(parts[1:-1])
            if key in histories:
                on_chunk, check = _overflow_check(histories[key], key, tensor)
        if not verify and on_chunk is None:
            continue
        crc = _scan(tensor, on_chunk)
        if verify and crc != expected[i][1]:
            raise _fail(path, f"record {name!r} (dtype {tensor.dtype}, shape "
                        f"{tuple(tensor.shape)}) does not match its checksum: "
                        f"the file is corrupted")
        check()


def _check_model(path: str, model: torch.nn.Module, saved: Any) -> None:
    if not isinstance(saved, Mapping):
        raise _fail(path, "its model state is not a mapping")
    current = model.state_dict()
    hooks = any(m._load_state_dict_pre_hooks for m in model.modules())
    if not hooks:  # Hooks may rename keys; then load_state_dict decides.
        missing = [k for k in current if k not in saved]
        unexpected = [k for k in saved if k not in current]
        if missing or unexpected:
            raise _fail(path, f"its model state does not fit the model "
                        f"(missing keys {missing[:10]}, unexpected keys "
                        f"{unexpected[:10]}); build the model like the "
                        f"saved one")
    for key, value in saved.items():
        if key not in current or not isinstance(current[key], Tensor):
            continue
        if not isinstance(value, Tensor):
            raise _fail(path, f"model entry {key!r} is not a tensor")
        if value.shape != current[key].shape:
            raise _fail(path, f"model entry {key!r} has shape "
                        f"{tuple(value.shape)} in the checkpoint but "
                        f"{tuple(current[key].shape)} in the model; build the "
                        f"model like the saved one")
        if value.is_floating_point() != current[key].is_floating_point():
            raise _fail(path, f"model entry {key!r} has dtype {value.dtype} "
                        f"in the checkpoint but {current[key].dtype} in the "
                        f"model")


def _check_optimizer(path: str, optimizer: torch.optim.Optimizer,
                     saved: Any, saved_class: Optional[str]) -> None:
    name = type(optimizer).__qualname__
    if saved_class is not None and saved_class != name:
        raise _fail(path, f"its optimizer state is of {saved_class} but the "
                    f"optimizer is {name}; pass an optimizer of the saved "
                    f"class or 'optimizer=None'")
    if (not isinstance(saved, Mapping)
            or not isinstance(saved.get('state'), Mapping)
            or not isinstance(saved.get('param_groups'), (list, tuple))
            or not all(isinstance(g, Mapping) and isinstance(
                g.get('params'), (list, tuple))
                for g in saved['param_groups'])):
        raise _fail(path, "its optimizer state is malformed")
    groups, saved_groups = optimizer.param_groups, saved['param_groups']
    if len(groups) != len(saved_groups):
        raise _fail(path, f"its optimizer state has {len(saved_groups)} "
                    f"parameter group(s) but the optimizer has "
                    f"{len(groups)}; build the optimizer like the saved one")
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        if len(group['params']) != len(saved_group['params']):
            raise _fail(path, f"parameter group {i} of its optimizer state "
                        f"has {len(saved_group['params'])} parameters but "
                        f"the optimizer's has {len(group['params'])}; build "
                        f"the optimizer over the same parameters")
    params = {}
    for group, saved_group in zip(groups, saved_groups):
        params.update(zip(saved_group['params'], group['params']))
    for key, entry in saved['state'].items():
        if key not in params:
            continue
        if not isinstance(entry, Mapping):
            raise _fail(path, f"optimizer state of parameter {key!r} is "
                        f"malformed")
        param = params[key]
        current = optimizer.state.get(param, {})
        for what, value in entry.items():
            if not isinstance(value, Tensor) or what == 'step':
                continue
            if isinstance(current.get(what), Tensor):
                shape = current[what].shape
            elif what in _ELEMENTWISE_STATE:
                shape = param.shape
            else:
                continue
            if value.shape != shape:
                raise _fail(path, f"optimizer state {what!r} of parameter "
                            f"{key!r} has shape {tuple(value.shape)} but "
                            f"the optimizer needs {tuple(shape)}; build the "
                            f"model and optimizer like the saved ones")


def _no_optimizer_state(path: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path!r} holds no optimizer state; "
                           f"pass 'optimizer=None' or save the checkpoint "
                           f"with the optimizer")


def _check_histories(path: str, saved: Any,
                     histories: Dict[str, History]) -> None:
    if not isinstance(saved, Mapping):
        raise _fail(path, "its history record is malformed")
    missing = sorted(set(saved) - set(histories))
    if missing:
        raise CheckpointError(
            f"the checkpoint holds histories {missing} that the model lacks "
            f"(the model has {sorted(histories)}); build the model with the "
            f"same layers as the saved one")
    unsaved = sorted(set(histories) - set(saved))
    if unsaved:
        raise CheckpointError(
            f"the model's histories {unsaved} are not in the checkpoint (it "
            f"holds {sorted(saved)}); build the model with the same layers "
            f"as the saved one")
    for name, history in histories.items():
        current = history.state()
        entry = saved[name]
        emb = entry.get('emb') if isinstance(entry, Mapping) else None
        if not isinstance(emb, Tensor) or not emb.is_floating_point():
            raise _fail(path, f"history {name!r} has no floating point table")
        shape = tuple(entry.get('shape', ()))
        if shape != tuple(current['shape']):
            raise CheckpointError(
                f"history {name!r} has shape {shape} in the checkpoint but "
                f"{tuple(current['shape'])} in the model; "
                f"build the model with the same 'num_nodes' and widths as "
                f"the saved one")
        if tuple(emb.shape) != shape:
            raise _fail(path, f"the table of history {name!r} has shape "
                        f"{tuple(emb.shape)}, not the recorded {shape}")
        for key, target in current.items():  # E.g. 'written' masks.
            value = entry.get(key)
            if key != 'emb' and isinstance(target, Tensor) and (
                    value is not None) and (not isinstance(value, Tensor)
                                            or value.shape != target.shape):
                raise _fail(path, f"the {key!r} record of history {name!r} "
                            f"does not fit the model's")


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
    and tables are read :obj:`CHECK_BYTES` and copied :obj:`CHUNK_ROWS`
    rows at a time, so that restoring a large table needs little memory.

    Loading is all-or-nothing. Everything is checked before anything is
    modified: the checksum of every tensor and of the file's structure, the
    keys, shapes and dtypes of the model state, the optimizer state (class,
    parameter groups, shapes of its buffers), the shapes of the histories,
    and that no finite value of a table overflows the storage dtype of the
    history it goes to (*e.g.*, :obj:`1e5` into :obj:`float16`). Then the
    optimizer, the model and the histories are written, in this order; if
    one of them fails, the model and the optimizer are put back as they
    were (the histories, copied last, are only left partly restored if
    their copy itself is interrupted, *e.g.*, by an I/O error).

    Files of format version 1 (written without checksums) load unverified,
    with a logged warning; save them again to add checksums.

    Args:
        path (str): The file written by :func:`save_checkpoint`.
        model (torch.nn.Module): A model built like the saved one.
        optimizer (torch.optim.Optimizer, optional): An optimizer built like
            the saved one, over the parameters of :obj:`model`.
            (default: :obj:`None`, the optimizer state is not restored)
        map_location (optional): Where the checkpoint's tensors are loaded
            (see :func:`torch.load`). (default: :obj:`"cpu"`)
        weights_only (bool, optional): The trust model. With :obj:`True`
            (the default, safe for files from anyone) the unpickler builds
            tensors and plain Python types only, and a file holding anything
            else is refused. :obj:`False` runs the full :mod:`pickle`
            machinery, which executes arbitrary code stored in the file:
            use it only for files you wrote yourself or otherwise trust,
            whose :obj:`extra` holds other objects. Checksums guard against
            corruption, not against a malicious file, which can carry
            matching checksums. (default: :obj:`True`)

    Returns:
        The :obj:`extra` keyword arguments of :func:`save_checkpoint`.

    Raises:
        CheckpointError: If the file is truncated, corrupted, of another
            format version, or does not fit :obj:`model` or
            :obj:`optimizer`; nothing has been modified.
        HistoryOverflowError: If a table holds finite values beyond the
            range of its history's storage dtype; nothing has been modified.
    """
    path = os.fspath(path)
    _check_args(model, optimizer)
    state = _read(path, map_location, weights_only)
    if not isinstance(state, dict) or 'histories' not in state:
        raise CheckpointError(f"{path!r} is not a checkpoint written by "
                              f"'save_checkpoint'")
    version = state.get('version')
    if version in _UNVERIFIED_VERSIONS:
        log.warning(f"checkpoint {path!r} has format version {version}, "
                    f"which has no checksums: it is loaded unverified; save "
                    f"it again to add them")
    elif version != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version "
                              f"{version!r} but this version of "
                              f"torch_autoscale reads {CHECKPOINT_VERSION} "
                              f"(and {_UNVERIFIED_VERSIONS}); nothing was "
                              f"loaded")
    if optimizer is not None and state.get('optimizer') is None:
        raise _no_optimizer_state(path)

    # 1. Validate everything, the cheap checks first; nothing is modified.
    expected = None
    if version == CHECKPOINT_VERSION:
        expected = _verify_structure(path, state)
    histories = _histories(model)
    _check_histories(path, state['histories'], histories)
    _check_model(path, model, state.get('model'))
    if optimizer is not None:
        _check_optimizer(path, optimizer, state['optimizer'],
                         state.get('optimizer_class'))
    _verify_records(path, state, histories, expected)
    extra = _clone(state.get('extra', {}))

    # 2. Modify, putting the model and the optimizer back on failure.
    backup = {k: v.detach().to('cpu', copy=True)
              for k, v in model.state_dict().items()}
    optimizer_backup = None if optimizer is None else optimizer.state_dict()
    stage = 'the optimizer'
    try:
        if optimizer is not None:
            optimizer.load_state_dict(_clone(state['optimizer']))
        stage = 'the model'
        model.load_state_dict(state['model'])
        stage = 'the histories (left partly restored)'
        with torch.no_grad():
            for name, history in histories.items():
                history.load_state(state['histories'][name], CHUNK_ROWS)
    except BaseException as e:
        try:
            if stage != 'the optimizer':
                with torch.no_grad():
                    model.load_state_dict(backup)
            if optimizer is not None:
                optimizer.load_state_dict(optimizer_backup)
        except Exception as undo:  # Keep the original error.
            log.error(f"cannot put the model and optimizer back after a "
                      f"failed load of {path!r}: {undo!r}")
        if isinstance(e, Exception) and not isinstance(e, OSError):
            raise CheckpointError(
                f"checkpoint {path!r}: restoring {stage} failed; the model "
                f"and optimizer were put back as they were "
                f"({type(e).__name__}: {str(e)[:300]})") from e
        raise
    return extra
