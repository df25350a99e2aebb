r"""Histories that several processes read and write: one table in shared
memory per machine, or a table sharded across processes by cluster
ownership with halo rows exchanged through :func:`all_to_all` collectives."""
import os
import tempfile
import weakref
from typing import Callable, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor

from torch_autoscale.distributed.assignment import ClusterAssignment
from torch_autoscale.distributed.context import (
    collective,
    comm_device,
    get_rank,
    get_world_size,
    local_world_size,
    require_group,
)
from torch_autoscale.errors import StorageFullError
from torch_autoscale.history import History
from torch_autoscale.history.files import (
    check_directory,
    open_unnamed,
    release_name,
    remove_file,
    reserve,
)
from torch_autoscale.history.history import check_index
from torch_autoscale.utils.checks import out_of_range
from torch_autoscale.utils.fd import fd_path

#: The ways processes share histories.
HISTORY_MODES = ('shared', 'sharded')


class SharedHistory(History):
    r"""One :class:`~torch_autoscale.history.History` table for all
    processes of a machine: a file in :obj:`directory` that every process
    maps, so a push by one is seen by the pulls of all, without any copy or
    message.

    Rank 0 of :obj:`group` creates the file and shares its name; all map it
    (collectively, so every process must build its histories in the same
    order), and rank 0 then removes the name, so that processes killed
    mid-run leave no file behind. Concurrent pushes touch disjoint rows
    (each cluster is trained by one process); a pull racing a push may read
    a row half-updated, which is staleness of the kind GAS already
    tolerates. :meth:`sync` is a barrier, which
    :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference` passes after
    every layer so that layer-wise inference stays exact.

    Every process of :obj:`group` must run on one machine; for several
    machines use :class:`ShardedHistory`.

    Args:
        num_nodes (int): The number of rows (nodes of the whole graph).
        channels (int): The embedding width of this layer.
        dtype (torch.dtype, optional): The storage dtype.
            (default: :obj:`None`, the default dtype)
        directory (str, optional): The folder of the shared file, on a file
            system every process of the machine sees; a memory-backed one
            (the shared-memory mount of Linux) keeps the table in RAM.
            (default: :obj:`None`, :func:`tempfile.gettempdir`)
        group (torch.distributed.ProcessGroup, optional): The processes
            that share the table. (default: :obj:`None`, all)
    """
    def __init__(self, num_nodes: int, channels: int,
                 dtype: Optional[torch.dtype] = None,
                 directory: Optional[str] = None, group=None):
        require_group("'SharedHistory'")
        if get_world_size(group) > local_world_size():
            raise ValueError(
                f"'SharedHistory' serves the processes of one machine, but "
                f"the group spans {get_world_size(group)} processes and this "
                f"machine runs {local_world_size()}; use 'sharded' "
                f"histories on several machines")
        self._group = group
        super().__init__(num_nodes, channels, dtype=dtype, storage='disk',
                         directory=directory)

    def _allocate(self, dtype: torch.dtype, device: torch.device,
                  directory: Optional[str]) -> None:
        # On Linux the file never gets a name: rank 0 creates it with
        # O_TMPFILE and the others open it through its descriptor's path
        # (torch_autoscale.utils.fd), so
        # a process killed at any moment leaves nothing behind. Where that
        # is not possible (or some process cannot open it), a fresh named
        # file whose name goes once every process has mapped it.
        for named in (False, True):
            if self._map_shared(dtype, directory, named):
                return

    def _map_shared(self, dtype: torch.dtype, directory: Optional[str],
                    named: bool) -> bool:
        rank0 = get_rank(self._group) == 0
        nbytes = self.num_nodes * self.channels * torch.empty(
            0, dtype=dtype).element_size()
        fd, path = None, None
        share: List = [None]
        if rank0:
            try:
                directory = self.directory = check_directory(directory)
                fd = None if named else open_unnamed(directory)
                if fd is not None:
                    path = fd_path(fd, os.getpid())
                else:
                    named = True
                    fd, path = tempfile.mkstemp(prefix='shared_history_',
                                                suffix='.bin', dir=directory)
                reserve(fd, nbytes, f"a 'SharedHistory' of {self.num_nodes} "
                        f"x {self.channels}", directory)
                share[0] = ('ok', path, named, directory)
            except (OSError, ValueError) as e:
                share[0] = ('error', isinstance(e, StorageFullError), str(e))
                if fd is not None:
                    os.close(fd)
                if named and path is not None:
                    remove_file(path)
                error = e
        # Also a barrier: the file exists before anyone maps it; a failure
        # on rank 0 is raised by every process, not waited for.
        src = dist.get_global_rank(self._group, 0) \
            if self._group is not None else 0
        with collective("'SharedHistory' (sharing its file)", self._group):
            dist.broadcast_object_list(share, src=src, group=self._group)
        if share[0][0] == 'error':
            if rank0:
                raise error
            kind = StorageFullError if share[0][1] else ValueError
            raise kind(f"rank 0 could not create the shared table: "
                       f"{share[0][2]}")
        _, path, named, self.directory = share[0]
        emb, failure = None, None
        try:
            emb = torch.from_file(path, shared=True,
                                  size=self.num_nodes * self.channels,
                                  dtype=dtype)
        except (OSError, RuntimeError) as e:
            failure = f'{type(e).__name__}: {e}'
        failures: List = [None] * get_world_size(self._group)
        with collective("'SharedHistory' (mapping its file)", self._group):
            dist.all_gather_object(failures, failure, group=self._group)
        if rank0:
            # Every process has mapped the file (or failed to): the name
            # and the descriptor can go; the mappings keep the table.
            if fd is not None:
                os.close(fd)
            if named and not release_name(path):
                self._finalizer = weakref.finalize(self, remove_file, path)
        if any(f is not None for f in failures):
            if not named:
                return False  # Retry with a named file.
            raise RuntimeError(f"'SharedHistory': a process could not map "
                               f"the shared file: {failures}")
        self.path = path if named else None
        self.emb = emb.view(self.num_nodes, self.channels)
        self._zeroed = True
        return True

    def reset_parameters(self):
        r"""Fills the table with zeros: rank 0 writes, then all wait."""
        self._check_open()
        if not self._zeroed and get_rank(self._group) == 0:
            self.emb.fill_(0)
        if not self._zeroed:
            self._barrier("'SharedHistory.reset_parameters'")
        self._zeroed = False

    def sync(self) -> None:
        r"""A barrier over the processes sharing the table: afterwards, every
        push made before it by any of them is visible.

        Raises:
            DistributedTimeoutError: If a process of the group stopped
                answering (see
                :func:`~torch_autoscale.distributed.collective`).
        """
        self._check_open()
        self._barrier("'SharedHistory.sync'")

    def _barrier(self, what: str) -> None:
        with collective(what, self._group):
            dist.barrier(group=self._group)


class ShardedHistory(History):
    r"""A history sharded across processes by cluster ownership: every
    process stores the rows of the nodes it owns (see
    :class:`ClusterAssignment`), so the tables of :math:`W` processes
    together hold the graph once, on any number of machines.

    :meth:`push` writes in-batch rows, which the pushing process owns, into
    its own shard. :meth:`pull` is collective: every process of
    :obj:`group` calls it at the same point (as data-parallel training
    does, layer by layer), requests the rows it lacks from their owners and
    serves the requests of the others, through three
    :func:`torch.distributed.all_to_all_single` calls (row counts, row
    indices, rows in the storage dtype).

    Args:
        assignment (ClusterAssignment): Who owns which cluster.
        channels (int): The embedding width of this layer.
        dtype (torch.dtype, optional): The storage dtype (also the dtype of
            the exchanged rows). (default: :obj:`None`, the default dtype)
        storage (str, optional): Where the shard lives, :obj:`"device"`,
            :obj:`"host"` or :obj:`"disk"` (see
            :class:`~torch_autoscale.history.History`).
            (default: :obj:`None`, :obj:`"host"`)
        device (torch.device or str, optional): The device of a
            :obj:`"device"` shard. (default: :obj:`None`)
        directory (str, optional): The folder of a :obj:`"disk"` shard.
            (default: :obj:`None`)
        group (torch.distributed.ProcessGroup, optional): The processes the
            graph is sharded over. (default: :obj:`None`, all)

    Shapes:
        - **pull**: global node indices :math:`(B,)` or none →
          :math:`(B, C)` or :math:`(N, C)`
        - **push**: rows of owned nodes :math:`(B, C)` with global node
          indices :math:`(B,)`, or global runs :obj:`offset`, :obj:`count`
    """
    supports_pool = False

    def __init__(self, assignment: ClusterAssignment, channels: int,
                 dtype: Optional[torch.dtype] = None,
                 storage: Optional[str] = None, device=None,
                 directory: Optional[str] = None, group=None):
        require_group("'ShardedHistory'")
        _check_assignment(assignment, group)
        self.rank = get_rank(group)
        super().__init__(assignment.num_local_nodes(self.rank), channels,
                         device=device, dtype=dtype, storage=storage,
                         directory=directory)
        self._group = group
        self.assignment = assignment
        #: The number of nodes of the whole graph.
        self.global_num_nodes = assignment.num_nodes

    def _check_global(self, name: str, index: Tensor) -> None:
        check_index(name, index)
        if index.numel() > 0 and (int(index.min()) < 0 or int(index.max())
                                  >= self.global_num_nodes):
            raise ValueError(f"'{name}' holds indices outside [0, "
                             f"{self.global_num_nodes}) of the graph")

    def _check_owned(self, name: str, index: Tensor) -> None:
        owner = self.assignment.node_owner[index]
        if bool((owner != self.rank).any()):
            raise ValueError(
                f"'{name}' holds nodes that rank {self.rank} does not own; "
                f"a process pushes the rows of its own clusters only (load "
                f"them with a DistributedSubgraphLoader built on the same "
                f"'assignment')")

    @torch.no_grad()
    def push(self, x: Tensor, n_id: Optional[Tensor] = None,
             offset: Optional[Tensor] = None,
             count: Optional[Tensor] = None) -> None:
        r"""Writes the rows :obj:`x` of owned nodes (global :obj:`n_id`, or
        global runs :obj:`offset`/:obj:`count`) into this process's shard;
        without either, :obj:`x` holds every node of the graph and the owned
        rows are kept."""
        local = self.assignment.local_index
        if offset is not None and count is not None:
            self._check_global('offset', offset)
            offset = offset.cpu()
            self._check_owned('offset', offset)
            offset = local[offset]
            n_id = None  # The local runs say it all.
        elif n_id is not None:
            self._check_global('n_id', n_id)
            n_id = n_id.cpu()
            self._check_owned('n_id', n_id)
            n_id = local[n_id]
        elif isinstance(x, Tensor) and x.dim() == 2:
            if x.size(0) != self.global_num_nodes:
                raise ValueError(
                    f"'x' has {x.size(0)} rows; without 'n_id' or "
                    f"'offset'/'count' it must cover all "
                    f"{self.global_num_nodes} nodes of the graph")
            nodes = self.assignment.nodes(self.rank)
            x = x.index_select(0, nodes.to(x.device))
        super().push(x, n_id, offset, count)

    @torch.no_grad()
    def pull(self, n_id: Optional[Tensor] = None) -> Tensor:
        r"""Returns the rows of the global nodes :obj:`n_id` (all nodes if
        :obj:`None`) on the model's device, gathered from their owners.
        Collective: every process of the group must call it.

        Raises:
            DistributedTimeoutError: If a process of the group stopped
                answering (see
                :func:`~torch_autoscale.distributed.collective`).
        """
        self._check_open()
        if n_id is None:
            n_id = torch.arange(self.global_num_nodes)
        self._check_global('n_id', n_id)
        n_id = n_id.cpu()
        rows = exchange_rows(self.emb, n_id, self.assignment, self._group)
        return rows.to(device=self._device, dtype=self._out_dtype(),
                       non_blocking=True)

    def location(self) -> str:
        return (f'rank={self.rank}, of {self.global_num_nodes} nodes, '
                f'{super().location()}')


def exchange_rows(table: Tensor, n_id: Tensor,
                  assignment: ClusterAssignment, group=None) -> Tensor:
    r"""The rows :obj:`n_id` of a table sharded by :obj:`assignment`, of
    which this process holds :obj:`table` (its owned rows, in order):
    requests go to the owners and rows come back through
    :func:`torch.distributed.all_to_all_single`, in :obj:`table`'s dtype.
    Collective over :obj:`group`.

    Args:
        table (torch.Tensor): This process's shard.
        n_id (torch.Tensor): Global node ids to read, on the CPU.
        assignment (ClusterAssignment): Who owns which node.
        group (torch.distributed.ProcessGroup, optional): The process group.
            (default: :obj:`None`)

    Raises:
        RuntimeError: If no process group is initialized.
        ValueError: If :obj:`n_id` holds ids outside of
            :obj:`[0, assignment.num_nodes)`, or :obj:`table` or
            :obj:`assignment` do not fit this process and its group.
        DistributedTimeoutError: If a process of the group stopped answering
            (see :func:`~torch_autoscale.distributed.collective`).
    """
    require_group("'exchange_rows'")
    n_id = _check_exchange(table, n_id, assignment, group)
    with collective("'exchange_rows' (a pull of a sharded history)",
                    group):
        return _exchange_rows(table, n_id, assignment, group)


def _check_assignment(assignment: ClusterAssignment, group) -> None:
    r"""Checks that :obj:`assignment` splits the graph over the processes of
    :obj:`group`."""
    if not isinstance(assignment, ClusterAssignment):
        raise ValueError(f"'assignment' must be a ClusterAssignment (got "
                         f"{type(assignment).__name__})")
    world_size = get_world_size(group)
    if assignment.world_size != world_size:
        raise ValueError(
            f"'assignment' splits the graph over {assignment.world_size} "
            f"processes but the group has {world_size}; build it with "
            f"world_size={world_size}")


def _check_exchange(table: Tensor, n_id: Tensor,
                    assignment: ClusterAssignment, group) -> Tensor:
    r"""Validates the arguments of :func:`exchange_rows` before any
    collective (a bad id on one process would otherwise fail it there and
    leave the others waiting) and returns :obj:`n_id` as CPU :obj:`int64`."""
    _check_assignment(assignment, group)
    rank = get_rank(group)
    rows = assignment.num_local_nodes(rank)
    if not isinstance(table, Tensor) or table.dim() != 2 or table.size(
            0) != rows:
        shape = (list(table.shape) if isinstance(table, Tensor) else
                 type(table).__name__)
        raise ValueError(f"'table' must be this process's shard of shape "
                         f"[{rows}, channels] (the nodes rank {rank} owns; "
                         f"got {shape})")
    if not isinstance(n_id, Tensor) or n_id.dim() != 1 or (
            n_id.is_floating_point() or n_id.is_complex()
            or n_id.dtype == torch.bool):
        what = (f'shape {list(n_id.shape)}, dtype {n_id.dtype}' if isinstance(
            n_id, Tensor) else type(n_id).__name__)
        raise ValueError(f"'n_id' must be a one-dimensional integer tensor "
                         f"of global node ids (got {what})")
    n_id = n_id.cpu().long()
    num_nodes = assignment.num_nodes
    bad = out_of_range(n_id, num_nodes)
    if bad is not None:
        raise ValueError(f"'n_id' holds node id {bad}, outside of [0, "
                         f"{num_nodes}) (the nodes of 'assignment'); "
                         f"pass global node ids of the permuted graph")
    return n_id


def _exchange_rows(table: Tensor, n_id: Tensor,
                   assignment: ClusterAssignment, group) -> Tensor:
    world_size = get_world_size(group)
    dev = comm_device(group)
    owner = assignment.node_owner[n_id]
    order = torch.argsort(owner, stable=True)
    send_counts = torch.bincount(owner, minlength=world_size)
    recv_counts = torch.empty_like(send_counts, device=dev)
    dist.all_to_all_single(recv_counts, send_counts.to(dev), group=group)
    send, recv = send_counts.tolist(), recv_counts.tolist()

    wanted = assignment.local_index[n_id[order]]
    asked = torch.empty(sum(recv), dtype=torch.long, device=dev)
    dist.all_to_all_single(asked, wanted.to(dev), recv, send, group=group)

    served = table.index_select(0, asked.to(table.device)).to(dev)
    got = torch.empty(n_id.numel(), table.size(1), dtype=table.dtype,
                      device=dev)
    dist.all_to_all_single(got, served.contiguous(), send, recv, group=group)
    out = torch.empty_like(got)
    out[order.to(dev)] = got
    return out


def history_factory(mode: str,
                    assignment: Optional[ClusterAssignment] = None,
                    storage: Optional[str] = None, device=None,
                    directory: Optional[str] = None,
                    group=None) -> Callable[..., History]:
    r"""The :obj:`history_factory` of a
    :class:`~torch_autoscale.nn.ScalableGNN` whose histories several
    processes share:

    .. code-block:: python

        loader = DistributedSubgraphLoader(data, ptr, batch_size=5)
        model = GCN(data.num_nodes, ..., history_factory=history_factory(
            'sharded', loader.assignment))
        model = DistributedDataParallel(model)

    Args:
        mode (str): :obj:`"shared"` (one table in the shared memory of one
            machine, :class:`SharedHistory`) or :obj:`"sharded"` (rows
            spread over the processes by cluster ownership, for any number
            of machines, :class:`ShardedHistory`).
        assignment (ClusterAssignment, optional): Who owns which cluster;
            required for :obj:`"sharded"` (use the loader's).
            (default: :obj:`None`)
        storage (str, optional): The tier of a :obj:`"sharded"` shard.
            (default: :obj:`None`, host memory)
        device (torch.device or str, optional): The device of a
            :obj:`"device"` shard. (default: :obj:`None`)
        directory (str, optional): The folder of the shared file
            (:obj:`"shared"`) or of a :obj:`"disk"` shard.
            (default: :obj:`None`)
        group (torch.distributed.ProcessGroup, optional): The processes.
            (default: :obj:`None`, all)
    """
    if mode not in HISTORY_MODES:
        raise ValueError(f"'mode' must be 'shared' or 'sharded' (got "
                         f"{mode!r})")
    if mode == 'sharded' and assignment is None:
        raise ValueError("mode 'sharded' needs the 'assignment' of clusters "
                         "to processes; pass the loader's "
                         "('loader.assignment')")
    if mode == 'shared' and (storage is not None or device is not None):
        raise ValueError("mode 'shared' keeps the table in shared host "
                         "memory; leave 'storage' and 'device' out")

    def make(layer: int, num_nodes: int, channels: int,
             dtype: Optional[torch.dtype] = None) -> History:
        if mode == 'shared':
            return SharedHistory(num_nodes, channels, dtype=dtype,
                                 directory=directory, group=group)
        if num_nodes != assignment.num_nodes:
            raise ValueError(f"the model has {num_nodes} nodes but "
                             f"'assignment' covers {assignment.num_nodes}")
        return ShardedHistory(assignment, channels, dtype=dtype,
                              storage=storage, device=device,
                              directory=directory, group=group)

    return make
