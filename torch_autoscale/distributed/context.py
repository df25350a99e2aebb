r"""The process group: start-up from :obj:`torchrun`'s environment, rank and
world size with single-process fallbacks, where collectives run, and what a
peer that stops answering gives (:class:`DistributedTimeoutError`)."""
import contextlib
import datetime
import os
import re
import socket
import threading
import time
from typing import Iterator, List, Optional, Tuple, Union

import torch
import torch.distributed as dist

from torch_autoscale.errors import DistributedTimeoutError

ProcessGroup = Optional['dist.ProcessGroup']

#: How long a collective waits for the other processes before it fails,
#: unless :func:`init_process_group` is given another :obj:`timeout`.
#: PyTorch's own default is 30 minutes for gloo (10 for NCCL).
DEFAULT_TIMEOUT = datetime.timedelta(minutes=5)

# The longest roll call after a failed collective (see _roll_call).
_MAX_GRACE = 60.0
_ROLL_CALL = 'torch_autoscale/roll_call/'
# What gloo, NCCL and the c10d store say when a peer stalled or died.
_PEER_FAILURE = re.compile(
    r'timed? ?out|timeout|connection (closed|reset|refused)|pair closure|'
    r'broken pipe|socket closed|watchdog|communicator was aborted',
    re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def init_process_group(
        backend: Optional[str] = None,
        timeout: Union[datetime.timedelta, float, None] = None,
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
        timeout (datetime.timedelta or float, optional): How long a
            collective (and the start-up itself) waits for the other
            processes, as a :class:`~datetime.timedelta` or in seconds. A
            collective that does not finish in time raises
            :class:`~torch_autoscale.errors.DistributedTimeoutError`
            naming the rank that stopped answering (see
            :func:`collective`); raise it where a process may legitimately
            work alone for longer (*e.g.*, rank 0 partitioning a large
            graph while the others wait). Ignored if the group already
            exists. (default: :obj:`None`, :obj:`DEFAULT_TIMEOUT`, five
            minutes)
        **kwargs (optional): Further arguments of
            :func:`torch.distributed.init_process_group`.

    Raises:
        ValueError: If :obj:`backend` names no backend of
            :mod:`torch.distributed`.
        DistributedTimeoutError: If the processes do not all join within
            :obj:`timeout`.
    """
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    if backend is not None:
        _check_backend(backend)
    if not dist.is_initialized():
        if backend is None:
            backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        if 'RANK' not in os.environ:  # Plain python: a group of one.
            os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
            os.environ.setdefault('MASTER_PORT', str(_free_port()))
            kwargs.setdefault('rank', 0)
            kwargs.setdefault('world_size', 1)
        timeout = _as_timedelta(timeout)
        kwargs['timeout'] = timeout
        try:
            dist.init_process_group(backend, **kwargs)
        except RuntimeError as e:
            if not _is_peer_failure(e):
                raise
            raise _join_error(timeout, e, kwargs) from e
        if backend == 'nccl':
            torch.cuda.set_device(local_rank())
    return dist.get_rank(), dist.get_world_size()


def _check_backend(backend: str) -> None:
    r"""Raises a :class:`ValueError` unless :obj:`backend` names backends
    :mod:`torch.distributed` knows (built in or registered via
    :meth:`torch.distributed.Backend.register_backend`), alone
    (:obj:`"gloo"`) or per device (:obj:`"cpu:gloo,cuda:nccl"`)."""
    known = [b for b in dist.Backend.backend_list if b != 'undefined']
    fix = (f"pass one of {', '.join(repr(b) for b in known)}, per device "
           f"as in 'cpu:gloo,cuda:nccl', or None for 'nccl' with CUDA and "
           f"'gloo' without")
    if not isinstance(backend, str):
        raise ValueError(f"'backend' must be a string (got "
                         f"{type(backend).__name__}); {fix}")
    for part in backend.split(','):
        name = part.split(':', 1)[1] if ':' in part else part
        if name.strip().lower() not in known:
            raise ValueError(f"'backend' names an unknown backend "
                             f"{name.strip()!r} (got {backend!r}); {fix}")


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


def _as_timedelta(timeout: Union[datetime.timedelta, float, None]
                  ) -> datetime.timedelta:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=float(timeout))
    if timeout.total_seconds() <= 0:
        raise ValueError(f"'timeout' must be positive (got {timeout})")
    return timeout


def _seconds(timeout: datetime.timedelta) -> str:
    return f'{timeout.total_seconds():g} s'


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f'{type(e).__name__}: {text[0] if text else ""}'


def _join_error(timeout: datetime.timedelta, e: BaseException,
                kwargs: dict) -> DistributedTimeoutError:
    # The rendezvous does not say who is missing; of two, the other one.
    env = os.environ
    rank = kwargs.get('rank', env.get('RANK'))
    world_size = kwargs.get('world_size', env.get('WORLD_SIZE'))
    missing = None
    if rank is not None and world_size is not None and int(world_size) == 2:
        missing = 1 - int(rank)
    who = (f'rank {missing} did not join' if missing is not None else
           'a process did not join (which one, the rendezvous does not '
           'tell; look for the rank that logged nothing)')
    return DistributedTimeoutError(
        f"'init_process_group' failed: not every process joined the group "
        f"within {_seconds(timeout)}; {who}: it did not start, stalled or "
        f"died ({_first_line(e)})", rank=missing)


def get_timeout(group: ProcessGroup = None) -> datetime.timedelta:
    r"""How long a collective of :obj:`group` waits for the other processes
    (the :obj:`timeout` the group was created with).

    Args:
        group (torch.distributed.ProcessGroup, optional): The process group.
            (default: :obj:`None`, the default group)
    """
    pg = group if group is not None else dist.group.WORLD
    for device in ('cpu', 'cuda'):
        try:
            return pg._get_backend(torch.device(device)).options._timeout
        except Exception:  # No such backend, or a private API changed.
            continue
    return DEFAULT_TIMEOUT


def _is_peer_failure(e: BaseException) -> bool:
    r"""Whether :obj:`e`, raised by a collective, means a peer stopped
    answering (a timeout, a closed connection) rather than bad input."""
    if isinstance(e, DistributedTimeoutError):
        return False
    if isinstance(e, (dist.DistNetworkError, dist.DistStoreError)):
        return True
    return isinstance(e, RuntimeError) and bool(_PEER_FAILURE.search(str(e)))


def _group_store(group: ProcessGroup):
    try:  # The c10d store the group was built on (prefixed for the group).
        pg = group if group is not None else dist.group.WORLD
        return dist.distributed_c10d._get_process_group_store(pg)
    except Exception:  # A private API of PyTorch; if it changed, no name.
        return None


def _store_host() -> Optional[int]:
    r"""The rank whose process serves the c10d store, if one does: rank
    0 under a TCP rendezvous (:obj:`env://`, :obj:`tcp://`), none under
    :obj:`torchrun` (its agent serves it)."""
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE', '').lower() == 'true':
        return None
    try:
        store = dist.distributed_c10d._get_default_store()
        store = getattr(store, '_underlying_non_prefix_store', store)
    except Exception:
        return None
    return 0 if isinstance(store, dist.TCPStore) else None


def _roll_call(group: ProcessGroup,
               grace: float) -> Tuple[Optional[List[int]], str]:
    r"""After a failed collective, every surviving process of :obj:`group`
    checks in through the c10d store the group was built on and waits up to
    :obj:`grace` seconds for the others; returns the (global) ranks that did
    not check in, or :obj:`None` with a reason where that cannot be known.

    A process whose collective failed because a peer stalled or died calls
    this once; the peer never checks in. Keys stay in the store, so a
    survivor that fails later still finds the others' answers. The store
    is only talked to from a daemon thread, bounded by the caller: a call
    to a stalled store may block past any timeout of the store's own."""
    store = _group_store(group)
    if store is None:
        return None, "the group's store cannot be reached"
    pg = group if group is not None else dist.group.WORLD
    me = dist.get_rank()
    keys = {r: f'{_ROLL_CALL}{r}'
            for r in dist.get_process_group_ranks(pg) if r != me}
    state: dict = {}

    def call() -> None:
        try:
            store.set(f'{_ROLL_CALL}{me}', '1')
            deadline = time.monotonic() + grace
            while (time.monotonic() < deadline
                   and not store.check(list(keys.values()))):
                time.sleep(0.1)
            state['missing'] = [r for r, key in keys.items()
                                if not store.check([key])]
        except Exception as e:  # The store failed, or refused us.
            state['error'] = e

    thread = threading.Thread(target=call, daemon=True,
                              name='torch_autoscale-roll-call')
    thread.start()
    thread.join(grace + min(grace, 10.0))
    if 'missing' in state:
        return state['missing'], ''
    host = _store_host()
    if host is None or host == me:
        return None, 'the rendezvous store stopped answering'
    return [host], (f'rank {host} serves the rendezvous store, which '
                    f'stopped answering too')


@contextlib.contextmanager
def collective(what: str, group: ProcessGroup = None) -> Iterator[None]:
    r"""Turns a peer that stops answering during the collectives run in its
    block into :class:`~torch_autoscale.errors.DistributedTimeoutError`
    naming that peer:

    .. code-block:: python

        with collective('the training step'):
            loss = criterion(ddp(x, adj_t, batch), y)
            loss.backward()  # DistributedDataParallel's all-reduce

    PyTorch fails a collective whose peer is stalled (*e.g.*, stopped by
    :obj:`SIGSTOP`, or stuck in a system call) after the group's
    :obj:`timeout` (:func:`init_process_group`), and one whose peer died at
    once (its connection closes). Either error is caught here; then every
    surviving process checks in through the group's c10d store and waits
    for the others for the timeout once more (at most a minute): the ranks
    that do not check in are the ones that stopped answering, and every
    survivor names the same ones. Errors that do not come from a peer
    (shapes, dtypes, ...) pass through unchanged, and so does a
    :class:`~torch_autoscale.errors.DistributedTimeoutError` raised inside
    (every collective of the library runs in such a block).

    With NCCL, PyTorch's watchdog ends a process whose collective times out
    on its own (unless :obj:`TORCH_NCCL_BLOCKING_WAIT=1`, which makes the
    collective raise here instead).

    Args:
        what (str): The operation, for the message (*e.g.*,
            :obj:`"ShardedHistory.pull"`).
        group (torch.distributed.ProcessGroup, optional): The group the
            collectives run on. (default: :obj:`None`, the default group)

    Raises:
        DistributedTimeoutError: With :obj:`rank` the (global) rank that
            stopped answering (the lowest if several did; the message names
            all), or :obj:`None` if every process answered the roll call
            (the processes called different collectives, or one worked
            alone for longer than the timeout).
    """
    try:
        yield
    except RuntimeError as e:
        if not _is_peer_failure(e) or not dist.is_initialized():
            raise
        raise _timeout_error(what, group, e) from e


def _timeout_error(what: str, group: ProcessGroup,
                   e: BaseException) -> DistributedTimeoutError:
    timeout = get_timeout(group)
    grace = min(timeout.total_seconds(), _MAX_GRACE)
    me = dist.get_rank()
    missing, reason = _roll_call(group, grace)
    cause = _first_line(e)
    if missing is None:
        return DistributedTimeoutError(
            f"{what} failed on rank {me}: a peer stopped answering (the "
            f"timeout is {_seconds(timeout)}), but which one cannot be "
            f"told: {reason} ({cause})", rank=None)
    if not missing:
        return DistributedTimeoutError(
            f"{what} failed on rank {me} after the timeout of "
            f"{_seconds(timeout)}, yet every rank answered afterwards: the "
            f"processes called different collectives, or one worked alone "
            f"for longer than the timeout (raise it with "
            f"init_process_group(timeout=...)) ({cause})", rank=None)
    names = ', '.join(str(r) for r in missing)
    ranks = 'rank' if len(missing) == 1 else 'ranks'
    why = reason or (f'it did not check in within {grace:g} s after the '
                     f'failure')
    return DistributedTimeoutError(
        f"{what} failed on rank {me}: {ranks} {names} stopped answering "
        f"(stalled, stopped or dead; {why}; the timeout is "
        f"{_seconds(timeout)}). Look at the log and the machine of {ranks} "
        f"{names}; if it is only slow, raise the timeout with "
        f"init_process_group(timeout=...) ({cause})", rank=missing[0])
