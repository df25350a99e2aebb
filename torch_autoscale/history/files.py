r"""The files behind on-disk history tables: folders checked, disk space
reserved up front, files without a name where the system allows it."""
import errno
import os
import tempfile
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_autoscale.errors import StorageFullError
from torch_autoscale.utils.fd import fd_path, supports_fd_paths
from torch_autoscale.utils.mapped import register_mapping


def remove_file(path: str) -> None:
    r"""Removes :obj:`path` if it exists."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def release_name(path: str) -> bool:
    r"""Removes the name of a mapped table file at once, as
    :func:`tempfile.TemporaryFile` does: the mapping keeps the rows, and the
    operating system frees the space when the last mapping goes, even if the
    process is killed (by the out-of-memory killer, say) before any
    finalizer runs. Returns :obj:`False` where an open file cannot be
    removed (Windows); the caller then removes it when done."""
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def check_directory(directory: Optional[str]) -> str:
    r"""Returns :obj:`directory` (:func:`tempfile.gettempdir` if
    :obj:`None`) after checking that it is a writable folder, raising a
    :class:`ValueError` that names it otherwise."""
    directory = tempfile.gettempdir() if directory is None else directory
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"'directory' must be a path (got "
                         f"{type(directory).__name__!r})")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"'directory' {directory!r} does not exist or is "
                         f"not a folder; create it first or pass an "
                         f"existing folder")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"'directory' {directory!r} is not writable; pass "
                         f"a folder you can write to")
    return directory


#: The errors that say a file system has no room for a file.
FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def reserve(fd: int, nbytes: int, what: str, directory: str) -> None:
    r"""Reserves :obj:`nbytes` of disk space for the open file :obj:`fd`
    (:func:`os.posix_fallocate`), so that a full file system is a
    :class:`~torch_autoscale.errors.StorageFullError` now rather than a
    :obj:`SIGBUS` on the first write to a memory mapping of a sparse file.

    Args:
        fd (int): The open file.
        nbytes (int): Its size.
        what (str): What the file holds, for the message.
        directory (str): Its folder, for the message.
    """
    if nbytes == 0:
        return
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno in FULL_ERRNOS:
            raise StorageFullError(
                e.errno, f"{what} needs {nbytes} bytes in {directory!r} but "
                f"they cannot be reserved ({os.strerror(e.errno)}); free "
                f"space there, raise the file size limit, or pass another "
                f"'directory'") from e
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        # A file system without fallocate (glibc emulates it elsewhere):
        # fall back to extending the file.
        os.ftruncate(fd, nbytes)


def open_unnamed(directory: str) -> Optional[int]:
    r"""A new file with no name in :obj:`directory` (Linux's
    :obj:`O_TMPFILE`): a process killed at any moment leaves nothing
    behind. :obj:`None` where the system or file system lacks it."""
    flag = getattr(os, 'O_TMPFILE', None)
    if flag is None or not supports_fd_paths():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o600)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL,
                       errno.ENOENT):
            return None
        raise


def map_file(directory: str, num_nodes: int, channels: int,
              dtype: torch.dtype,
              named: bool = False) -> Tuple[Tensor, Optional[str]]:
    r"""Maps a new, zero-filled file of :obj:`num_nodes` rows in
    :obj:`directory`, with its disk space reserved. Unless :obj:`named`, the
    file has no name on Linux (the returned path is :obj:`None`); elsewhere,
    and when :obj:`named`, it has an exclusive fresh name."""
    nbytes = num_nodes * channels * torch.empty(0, dtype=dtype).element_size()
    fd = None if named else open_unnamed(directory)
    path: Optional[str] = None
    if fd is None:
        try:
            fd, path = tempfile.mkstemp(prefix='history_', suffix='.bin',
                                        dir=directory)
        except OSError as e:
            raise ValueError(f"'directory' {directory!r} is not writable "
                             f"({e.strerror}); pass a folder you can write "
                             f"to") from e
    try:
        reserve(fd, nbytes, f"a 'disk' history of {num_nodes} x {channels} "
                f"{str(dtype).replace('torch.', '')}", directory)
        # A shared mapping: writes go through to the (reserved) file.
        source = path if path is not None else fd_path(fd)
        emb = torch.from_file(source, shared=True, size=num_nodes * channels,
                              dtype=dtype)
    except BaseException:
        if path is not None:
            remove_file(path)
        raise
    finally:
        os.close(fd)
    register_mapping(emb, 'history')
    return emb.view(num_nodes, channels), path
