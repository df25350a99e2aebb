r"""The process group: start-up from :obj:`torchrun`'s environment, rank and
world size with single-process fallbacks, and where collectives run."""
import datetime
import os
import socket
from typing import Optional, Tuple

import torch
import torch.distributed as dist

ProcessGroup = Optional['dist.ProcessGroup']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def init_process_group(backend: Optional[str] = None,
                       timeout: Optional[datetime.timedelta] = None,
                       **kwargs) -> Tuple[int, int]:
    r"""Initializes :mod:`torch.distributed` unless it already is, and returns
    :obj:`(rank, world_size)`.

    Under :obj:`torchrun` (which sets :obj:`RANK`, :obj:`WORLD_SIZE`,
    :obj:`MASTER_ADDR` and :obj:`MASTER_PORT`) the group spans all launched
    processes; a script started with plain :obj:`python` gets a group of
    one, so the same code runs both ways.

    Args:
        backend (str, optional): :obj:`"gloo"` (CPU) or :obj:`"nccl"`
            (GPUs). (default: :obj:`None`, :obj:`"nccl"` if CUDA is
            available, :obj:`"gloo"` otherwise)
        timeout (datetime.timedelta, optional): How long collectives wait.
            (default: :obj:`None`, PyTorch's default)
        **kwargs (optional): Further arguments of
            :func:`torch.distributed.init_process_group`.
    """
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        if backend is None:
            backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        if 'RANK' not in os.environ:  # Plain python: a group of one.
            os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
            os.environ.setdefault('MASTER_PORT', str(_free_port()))
            kwargs.setdefault('rank', 0)
            kwargs.setdefault('world_size', 1)
        if timeout is not None:
            kwargs['timeout'] = timeout
        dist.init_process_group(backend, **kwargs)
        if backend == 'nccl':
            torch.cuda.set_device(local_rank())
    return dist.get_rank(), dist.get_world_size()


def get_rank(group: ProcessGroup = None) -> int:
    r"""The rank of this process (:obj:`0` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group)
    return 0


def get_world_size(group: ProcessGroup = None) -> int:
    r"""The number of processes (:obj:`1` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(group)
    return 1


def local_rank() -> int:
    r"""The rank of this process on its machine (:obj:`LOCAL_RANK`, set by
    :obj:`torchrun`; :obj:`0` otherwise)."""
    return int(os.environ.get('LOCAL_RANK', 0))


def local_world_size() -> int:
    r"""The number of processes on this machine (:obj:`LOCAL_WORLD_SIZE`, set
    by :obj:`torchrun`; the world size otherwise)."""
    return int(os.environ.get('LOCAL_WORLD_SIZE', get_world_size()))


def comm_device(group: ProcessGroup = None) -> torch.device:
    r"""Where tensors handed to collectives must live: the current GPU for
    NCCL, the CPU otherwise."""
    if dist.get_backend(group) == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def require_group(what: str) -> None:
    r"""Raises a :class:`RuntimeError` naming :obj:`what` unless a process
    group is initialized."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"{what} needs a torch.distributed process group; call "
            f"'torch_autoscale.distributed.init_process_group()' first "
            f"(under torchrun, or with plain python for a group of one)")
