import copy
import logging
import weakref
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from torch_autoscale.errors import (
    HistoryOverflowError,
    NonFiniteError,
    finite_checks_enabled,
    format_rows,
    non_finite_rows,
)

from .files import check_directory, map_file, release_name, remove_file

log = logging.getLogger(__name__)

DeviceLike = Union[str, torch.device, None]

#: The places a :class:`History` table can live.
STORAGES = ('device', 'host', 'disk')


def check_index(name: str, index: Optional[Tensor]) -> None:
    r"""Raises a :class:`ValueError` naming :obj:`name` unless
    :obj:`index` is :obj:`None` or a one-dimensional int64 tensor."""
    if index is None:
        return
    if not isinstance(index, Tensor) or index.dtype != torch.long:
        raise ValueError(f"'{name}' must be an int64 tensor (got "
                         f"{getattr(index, 'dtype', type(index))})")
    if index.dim() != 1:
        raise ValueError(f"'{name}' must be one-dimensional (got shape "
                         f"{tuple(index.size())})")


def check_storage(storage: Optional[str], name: str = 'storage') -> None:
    r"""Raises a :class:`ValueError` naming :obj:`name` unless
    :obj:`storage` is :obj:`None` or one of :obj:`STORAGES`."""
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"'{name}' must be one of 'device', 'host' or "
                         f"'disk' (got {storage!r})")


def resolve_storage(storage: Optional[str],
                    device: DeviceLike = None) -> Tuple[str, torch.device]:
    r"""Returns the storage tier and the table's device for the
    :class:`History` arguments :obj:`storage` and :obj:`device`, raising a
    :class:`ValueError` if they contradict each other."""
    check_storage(storage)
    dev = torch.device('cpu') if device is None else torch.device(device)
    if storage is None:
        storage = 'device' if device is not None and dev.type != 'cpu' \
            else 'host'
    if storage == 'device' and device is None:
        raise ValueError("storage='device' places the table on 'device', "
                         "which is missing; pass, e.g., device='cuda'")
    if storage in ('host', 'disk') and dev.type != 'cpu':
        raise ValueError(
            f"storage={storage!r} keeps the table in CPU memory but 'device' "
            f"is {dev}; leave 'device' out, or pass storage='device' to "
            f"place the table on {dev}")
    return storage, dev


def _run_rows(offset: Tensor, count: Tensor) -> Tensor:
    r"""The table rows that the runs :obj:`(offset, count)` cover."""
    total = int(count.sum())
    ptr = count.cumsum(0) - count
    return torch.repeat_interleave(offset - ptr, count,
                                   output_size=total) + torch.arange(total)


class History(torch.nn.Module):
    r"""A table of historical embeddings, one row per node, for one layer
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    During GAS training, every layer pushes the fresh embeddings of the nodes
    inside the current mini-batch and pulls the (stale) embeddings of the
    mini-batch's out-of-batch neighbours (its halo).

    The table lives in one of three storage tiers, and stays there when the
    owning model is moved with :meth:`torch.nn.Module.to`: :meth:`pull`
    returns rows on the model's device, and :meth:`push` accepts rows from
    it.

    * :obj:`"host"`: CPU memory, pinned when CUDA is available, so that it
      can be copied asynchronously (the default).
    * :obj:`"device"`: on :obj:`device`, *e.g.*, an accelerator with memory
      to spare.
    * :obj:`"disk"`: a memory-mapped file in :obj:`directory`, for tables
      larger than host memory. Pulls gather from the mapping and pushes write
      through it; the operating system's page cache keeps the hot rows in
      memory. The file's disk space is reserved when the history is created,
      so a full file system raises
      :class:`~torch_autoscale.errors.StorageFullError` then, never a
      :obj:`SIGBUS` on a later write. Unless :obj:`keep_file` is set, the
      file never has a name on Linux (:obj:`O_TMPFILE`; elsewhere its name
      (:attr:`path`) is removed as soon as the table is mapped), so a killed
      process leaves nothing behind; its space is freed when the history is
      closed or garbage-collected.

    Every push is checked before anything is written: node indices and runs
    must lie within the table (runs with non-negative lengths that do not
    overlap), and the values must be finite and representable in the
    table's dtype. NaN or infinite values raise
    :class:`~torch_autoscale.errors.NonFiniteError` and finite values beyond
    the dtype's range (*e.g.*, above 65504 for :obj:`torch.float16`) raise
    :class:`~torch_autoscale.errors.HistoryOverflowError`, both naming the
    nodes, rather than storing infinities that would poison every later
    pull. :func:`~torch_autoscale.errors.set_finite_checks` turns the value
    checks off.

    Histories are deliberately not part of :meth:`state_dict`; save and
    restore their contents with
    :func:`~torch_autoscale.checkpoint.save_checkpoint` and
    :func:`~torch_autoscale.checkpoint.load_checkpoint`.

    Args:
        num_nodes (int): The number of rows (nodes).
        channels (int): The embedding width of this layer.
        device (torch.device or str, optional): The device of a
            :obj:`"device"` table. (default: :obj:`None`)
        dtype (torch.dtype, optional): The storage dtype, *e.g.*,
            :obj:`torch.float16` to halve history memory. Pushed embeddings
            are cast to it and pulled ones back to
            :obj:`torch.get_default_dtype()`. (default: :obj:`None`, the
            default dtype)
        storage (str, optional): The storage tier, :obj:`"device"`,
            :obj:`"host"` or :obj:`"disk"`. (default: :obj:`None`,
            :obj:`"device"` if :obj:`device` is given and not the CPU,
            :obj:`"host"` otherwise)
        directory (str, optional): The folder of a :obj:`"disk"` table's file.
            (default: :obj:`None`, :func:`tempfile.gettempdir`)
        keep_file (bool, optional): Whether a :obj:`"disk"` table's file
            outlives the history. (default: :obj:`False`)

    Shapes:
        - **pull**: node indices :math:`(B,)` or none → :math:`(B, C)` or
          :math:`(N, C)`
        - **push**: embeddings :math:`(B, C)` with node indices :math:`(B,)`,
          or contiguous runs :obj:`offset`, :obj:`count` with
          :math:`\sum \text{count} = B`
    """
    #: Whether :class:`~torch_autoscale.history.AsyncIOPool` may read and
    #: write :attr:`emb` directly (one row per node of the graph).
    supports_pool: bool = True

    def __init__(self, num_nodes: int, channels: int,
                 device: DeviceLike = None,
                 dtype: Optional[torch.dtype] = None,
                 storage: Optional[str] = None,
                 directory: Optional[str] = None, keep_file: bool = False):
        super().__init__()
        if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) \
                or num_nodes < 0:
            raise ValueError(f"'num_nodes' must be a non-negative integer "
                             f"(got {num_nodes!r})")
        if not isinstance(channels, int) or isinstance(channels, bool) \
                or channels <= 0:
            raise ValueError(f"'channels' must be a positive integer (got "
                             f"{channels!r})")
        dtype = dtype or torch.get_default_dtype()
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"'dtype' must be a floating point dtype such as "
                             f"torch.float32 or torch.float16 (got {dtype})")
        storage, device = resolve_storage(storage, device)
        if storage != 'disk' and directory is not None:
            raise ValueError(f"'directory' is used by storage='disk' only "
                             f"(got storage={storage!r}); pass "
                             f"storage='disk' or leave 'directory' out")
        if storage != 'disk' and keep_file:
            raise ValueError(f"'keep_file' is used by storage='disk' only "
                             f"(got storage={storage!r}); pass "
                             f"storage='disk' or leave 'keep_file' out")

        self.num_nodes = num_nodes
        self.channels = channels
        self.keep_file = bool(keep_file)
        self._storage = storage
        self._closed = False
        #: The file of a :obj:`"disk"` table (:obj:`None` otherwise); without
        #: :obj:`keep_file`, only the name it was created under.
        self.path: Optional[str] = None
        #: The folder of a :obj:`"disk"` table's file (:obj:`None`
        #: otherwise).
        self.directory: Optional[str] = None
        self._finalizer: Optional[weakref.finalize] = None
        self._allocate(dtype, device, directory)
        # The device of the owning model: pulls return there.
        self._device = torch.device('cpu')
        self.reset_parameters()

    def _allocate(self, dtype: torch.dtype, device: torch.device,
                  directory: Optional[str]) -> None:
        if self._storage == 'disk':
            directory = self.directory = check_directory(directory)
            self.emb, self.path = map_file(directory, self.num_nodes,
                                            self.channels, dtype,
                                            named=self.keep_file)
            if self.path is not None and not self.keep_file and \
                    not release_name(self.path):
                self._finalizer = weakref.finalize(self, remove_file,
                                                   self.path)
            # A new file reads as zeros: skip the first reset, which would
            # write (and un-sparsify) the whole file.
            self._zeroed = True
        else:
            pin = (self._storage == 'host' and torch.cuda.is_available())
            self.emb = torch.empty(self.num_nodes, self.channels,
                                   device=device, dtype=dtype,
                                   pin_memory=pin)
            self._zeroed = False

    @property
    def dtype(self) -> torch.dtype:
        return self.emb.dtype

    @property
    def device(self) -> torch.device:
        r"""The device that pulled embeddings are returned on (the device
        of the owning model)."""
        return self._device

    @property
    def storage(self) -> str:
        r"""The storage tier of the table: :obj:`"device"`, :obj:`"host"` or
        :obj:`"disk"`."""
        return self._storage

    @property
    def nbytes(self) -> int:
        r"""The size of the table in bytes."""
        return self.emb.numel() * self.emb.element_size()

    def reset_parameters(self):
        r"""Fills the table with zeros."""
        self._check_open()
        if not self._zeroed:
            self.emb.fill_(0)
        self._zeroed = False

    def close(self) -> None:
        r"""Releases the table and, for a :obj:`"disk"` table, removes its
        file unless :obj:`keep_file` is set. The history cannot be used
        afterwards; closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        self.emb = self.emb.new_empty(0, self.channels, device='cpu')
        if self._finalizer is not None:
            self._finalizer()

    def sync(self) -> None:
        r"""Returns once every push made so far, by any process that shares
        this table, is visible to :meth:`pull`. A no-op for a table that one
        process owns; tables shared by several processes (see
        :mod:`torch_autoscale.distributed`) wait for the others here.
        :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference` calls it
        after every layer."""
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {self.__class__.__name__} was closed; "
                               f"create a new one")

    def _out_dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    @torch.no_grad()
    def pull(self, n_id: Optional[Tensor] = None) -> Tensor:
        r"""Returns the rows :obj:`n_id` (all rows if :obj:`None`) on the
        model's device, in the default dtype.

        Args:
            n_id (torch.Tensor, optional): The node indices to read.
                (default: :obj:`None`)
        """
        self._check_open()
        check_index('n_id', n_id)
        out = self.emb
        if n_id is not None:
            if n_id.numel() > 0 and (int(n_id.min()) < 0
                                     or int(n_id.max()) >= self.num_nodes):
                raise ValueError(
                    f"'n_id' holds indices outside [0, {self.num_nodes}) of "
                    f"this History")
            out = out.index_select(0, n_id.to(self.emb.device))
        return out.to(device=self._device, dtype=self._out_dtype(),
                      non_blocking=True)

    @torch.no_grad()
    def push(self, x: Tensor, n_id: Optional[Tensor] = None,
             offset: Optional[Tensor] = None,
             count: Optional[Tensor] = None) -> None:
        r"""Writes :obj:`x` into the table.

        Rows go to :obj:`n_id`, or to the contiguous runs
        :obj:`emb[offset[i]:offset[i] + count[i]]` (faster: a few large
        copies), or to the whole table when neither is given.

        Args:
            x (torch.Tensor): The embeddings to write, on the model's device.
            n_id (torch.Tensor, optional): The node index of every row of
                :obj:`x`, each node at most once; with :obj:`offset` and
                :obj:`count`, it must name the same rows. (default:
                :obj:`None`)
            offset (torch.Tensor, optional): Start of each contiguous run.
                (default: :obj:`None`)
            count (torch.Tensor, optional): Length of each contiguous run.
                (default: :obj:`None`)
        """
        self._check_open()
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise ValueError(f"'x' must be a two-dimensional tensor of shape "
                             f"[num_rows, {self.channels}] (got "
                             f"{tuple(getattr(x, 'shape', ()))})")
        if x.size(1) != self.channels:
            raise ValueError(f"'x' has {x.size(1)} channels but this History "
                             f"holds {self.channels}; size the history by "
                             f"the output width of its layer")
        if not x.is_floating_point():
            raise ValueError(f"'x' must be a floating point tensor (got "
                             f"{x.dtype})")
        if x.device != self._device and x.device != self.emb.device:
            raise ValueError(
                f"'x' is on {x.device} but this History serves a model on "
                f"{self._device} (table on {self.emb.device}); move the model "
                f"with 'model.to({str(x.device)!r})' so histories follow it")
        check_index('n_id', n_id)
        check_index('offset', offset)
        check_index('count', count)
        if (offset is None) != (count is None):
            raise ValueError("'offset' and 'count' must be given together")

        x = x.detach()
        if offset is not None:
            offset, count = offset.cpu(), count.cpu()
            self._check_runs(offset, count, x.size(0))
            if n_id is not None and not torch.equal(
                    n_id.cpu(), _run_rows(offset, count)):
                raise ValueError("'n_id' and the runs 'offset'/'count' "
                                 "describe different rows; pass one of "
                                 "them, or both for the same rows")
            x = self.check_values(x, lambda rows: _run_rows(offset, count)[
                rows])
            src = 0
            for o, c in zip(offset.tolist(), count.tolist()):
                self.emb[o:o + c].copy_(x[src:src + c], non_blocking=True)
                src += c
        elif n_id is not None:
            if n_id.numel() != x.size(0):
                raise ValueError(f"'n_id' has {n_id.numel()} entries but 'x' "
                                 f"has {x.size(0)} rows")
            if n_id.numel() > 0 and (int(n_id.min()) < 0
                                     or int(n_id.max()) >= self.num_nodes):
                raise ValueError(
                    f"'n_id' holds indices outside [0, {self.num_nodes}) of "
                    f"this History")
            if n_id.numel() > 1:
                ids = n_id.sort()[0]
                dup = (ids[1:] == ids[:-1]).nonzero()
                if dup.numel() > 0:
                    raise ValueError(
                        f"'n_id' holds node {int(ids[int(dup[0])])} more "
                        f"than once; every node is pushed at most once (the "
                        f"row that lands would be arbitrary)")
            x = self.check_values(x, lambda rows: n_id.cpu()[rows])
            self.emb.index_copy_(0, n_id.to(self.emb.device),
                                 x.to(self.emb.device))
        else:
            if x.size(0) != self.num_nodes:
                raise ValueError(f"'x' has {x.size(0)} rows; without 'n_id' "
                                 f"or 'offset'/'count' it must cover all "
                                 f"{self.num_nodes} nodes")
            self.emb.copy_(self.check_values(x, lambda rows: rows))

    def _check_runs(self, offset: Tensor, count: Tensor,
                    num_rows: int) -> None:
        if offset.numel() != count.numel():
            raise ValueError(f"'offset' ({offset.numel()}) and 'count' "
                             f"({count.numel()}) differ in length")
        if offset.numel() == 0:
            if num_rows != 0:
                raise ValueError(f"'count' sums to 0 but 'x' has {num_rows} "
                                 f"rows")
            return
        bad = ((offset < 0) | (count < 0) | (offset > self.num_nodes)
               | (count > self.num_nodes - offset)).nonzero()
        if bad.numel() > 0:
            i = int(bad[0])
            raise ValueError(
                f"run {i} (offset {int(offset[i])}, count {int(count[i])}) of "
                f"'offset'/'count' exceeds the {self.num_nodes} rows of "
                f"this History; offsets must be in [0, {self.num_nodes}] and "
                f"counts non-negative")
        total = int(count.sum())
        if total != num_rows:
            raise ValueError(f"'count' sums to {total} but 'x' has {num_rows} "
                             f"rows")
        order = torch.argsort(offset, stable=True)
        end = (offset + count)[order]
        start, nonempty = offset[order], count[order] > 0
        clash = (end[:-1] > start[1:]) & nonempty[:-1] & nonempty[1:]
        if bool(clash.any()):
            i = int(clash.nonzero()[0])
            a, b = int(order[i]), int(order[i + 1])
            raise ValueError(f"runs {a} and {b} of 'offset'/'count' overlap "
                             f"(rows {int(offset[b])}..{int(end[i]) - 1}); "
                             f"every node is pushed at most once")

    def check_values(self, x: Tensor, node_of=None) -> Tensor:
        r"""Returns :obj:`x` in the table's dtype after checking that every
        value is finite and representable in it.

        Args:
            x (torch.Tensor): The embeddings about to be written.
            node_of (callable, optional): Maps row positions of :obj:`x` to
                the node indices they are written to, for the message.
                (default: :obj:`None`, row positions)

        Raises:
            NonFiniteError: If :obj:`x` holds NaN or infinite values.
            HistoryOverflowError: If a finite value of :obj:`x` lies beyond
                the range of the table's dtype.
        """
        out = x.to(self.emb.dtype)
        if not finite_checks_enabled() or out.numel() == 0:
            return out
        # One reduction when fine: a sum in float64 of finite values of at
        # most float32's range stays finite, and NaN or infinity survive
        # it (about 3x faster than isfinite().all(), which writes a mask).
        if bool(torch.isfinite(out.sum(dtype=torch.float64))):
            return out
        if bool(torch.isfinite(out).all()):  # A float64 sum overflowed.
            return out
        bad = non_finite_rows(x)
        kind = NonFiniteError
        if bad.numel() == 0:  # Finite in x, infinite once cast: overflow.
            bad, kind = non_finite_rows(out), HistoryOverflowError
        rows = bad if node_of is None else node_of(bad)
        rows = rows.tolist()
        shown = format_rows(rows)
        if kind is NonFiniteError:
            raise NonFiniteError(
                f"the embeddings pushed into this History hold NaN or "
                f"infinite values at nodes {shown}; they would poison every "
                f"later pull. Check the input features and the learning rate "
                f"(torch.autograd.set_detect_anomaly finds the operation)",
                rows=rows)
        finfo = torch.finfo(self.emb.dtype)
        raise HistoryOverflowError(
            f"the embeddings pushed into this History exceed the range of "
            f"its dtype {self.emb.dtype} (largest value {finfo.max:g}) at "
            f"nodes {shown} and would be stored as infinity; create the "
            f"history with dtype=torch.bfloat16 or torch.float32, or keep "
            f"the embeddings smaller (e.g., normalization)", rows=rows)

    def state(self) -> Dict[str, Any]:
        r"""The contents to checkpoint (see
        :func:`~torch_autoscale.checkpoint.save_checkpoint`): the table
        :obj:`emb` (not copied), its :obj:`shape`, :obj:`dtype` and
        :obj:`storage`."""
        self._check_open()
        return dict(emb=self.emb.detach(),
                    shape=(self.num_nodes, self.channels),
                    dtype=str(self.dtype).replace('torch.', ''),
                    storage=self.storage)

    @torch.no_grad()
    def load_state(self, state: Dict[str, Any],
                   chunk_rows: int = 1 << 20) -> None:
        r"""Copies the table of :obj:`state` (of :meth:`state`, checked by
        the caller) into this one, :obj:`chunk_rows` rows at a time and cast
        to this table's dtype, whatever its tier."""
        self._check_open()
        copy_rows(self.emb, state['emb'], chunk_rows)

    def _apply(self, fn, recurse=True):
        # Track the model's device without moving the table: histories stay
        # in host memory unless they were placed on a device on purpose.
        self._device = fn(torch.zeros(1, device=self._device)).device
        return self

    def location(self) -> str:
        r"""Where the table lives, as shown by :func:`repr`."""
        out = f'storage={self._storage!r}'
        if self._storage == 'device':
            out += f', device={self.emb.device}'
        elif self._storage == 'disk' and self.path is not None:
            out += f', path={self.path!r}'
        elif self._storage == 'disk':
            out += f', directory={self.directory!r}'
        return out

    def extra_repr(self) -> str:
        return (f'{self.num_nodes}, {self.channels}, dtype={self.dtype}, '
                f'{self.location()}')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.extra_repr()})'

    def __deepcopy__(self, memo: Dict[int, Any]) -> 'History':
        # A copy of a "disk" table gets a file of its own (in the same
        # folder), rather than an in-memory table that claims to be on disk.
        cls = self.__class__
        out = cls.__new__(cls)
        memo[id(self)] = out
        for key, value in self.__dict__.items():
            if key not in ('emb', 'path', '_finalizer'):
                out.__dict__[key] = copy.deepcopy(value, memo)
        out.path, out._finalizer = None, None
        if self._storage == 'disk' and not self._closed:
            out._allocate(self.dtype, torch.device('cpu'), self.directory)
            out._zeroed = False
            copy_rows(out.emb, self.emb)
        else:
            out.emb = copy.deepcopy(self.emb, memo)
        return out

    def __getstate__(self) -> Dict[str, Any]:
        # Pickling stores the contents: a "disk" table comes back as a
        # "host" one (its file belongs to this process).
        state = self.__dict__.copy()
        if self._storage == 'disk':
            state.update(_storage='host', path=None, _finalizer=None,
                         keep_file=False)
        return state


def copy_rows(dst: Tensor, src: Tensor, chunk_rows: int = 1 << 20) -> None:
    r"""Copies :obj:`src` into :obj:`dst` (casting to its dtype and device)
    :obj:`chunk_rows` rows at a time, so that a memory-mapped operand is
    never materialized as a whole.

    Args:
        dst (torch.Tensor): The destination, of the shape of :obj:`src`.
        src (torch.Tensor): The source.
        chunk_rows (int, optional): The rows per copy.
            (default: :obj:`1048576`)
    """
    if dst.size() != src.size():
        raise ValueError(f"'dst' has shape {tuple(dst.size())} but 'src' "
                         f"has {tuple(src.size())}")
    for start in range(0, src.size(0), chunk_rows):
        end = min(start + chunk_rows, src.size(0))
        dst[start:end].copy_(src[start:end])
