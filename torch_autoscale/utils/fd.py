r"""Reaching an open file through a path, where the operating system offers
one.

Files created with Linux's :obj:`O_TMPFILE` have no name, so a process killed
at any moment leaves nothing behind. To map such a file with
:func:`torch.from_file`, to give a finished checkpoint its name
(:func:`os.link`), or to let another process of the machine open it, the file
is reached through the process file system (``procfs``), which lists every
open file descriptor of every process. This module is the one place that
knows that interface; callers fall back to named files where
:func:`fd_path` returns :obj:`None`.
"""
import os
from typing import Optional

# procfs's mount point, the same on every Linux system (it is an interface
# of the kernel, not a location of this machine).
_PROCFS = os.path.join(os.sep, 'proc')


def fd_path(fd: int, pid: Optional[int] = None) -> Optional[str]:
    r"""A path that opens the same file as the descriptor :obj:`fd` of
    process :obj:`pid`, or :obj:`None` where the system offers none (no
    ``procfs``, *e.g.*, macOS or Windows).

    Args:
        fd (int): An open file descriptor.
        pid (int, optional): The process that holds it; another process of
            the same user on the same machine can open the path while
            :obj:`fd` stays open. (default: :obj:`None`, this process)
    """
    folder = os.path.join(_PROCFS, 'self' if pid is None else str(pid), 'fd')
    if not os.path.isdir(folder):
        return None
    return os.path.join(folder, str(int(fd)))


def supports_fd_paths() -> bool:
    r"""Whether :func:`fd_path` works on this system."""
    return os.path.isdir(os.path.join(_PROCFS, 'self', 'fd'))


__all__ = ['fd_path', 'supports_fd_paths']
