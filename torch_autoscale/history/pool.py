from collections import deque
from typing import Any, Deque, Optional, Tuple

import torch
from torch import Tensor

from torch_autoscale import ops


class AsyncIOPool(torch.nn.Module):
    r"""Staging buffers and CUDA streams that overlap history I/O with
    compute (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_, Section 4).

    A pull gathers history rows from a pinned host table into a pinned
    staging buffer on a native worker thread (the GIL is released) and copies
    them to the GPU on a side stream; a push copies contiguous runs of
    in-batch embeddings back to the host table on another side stream. The
    compute stream waits on CUDA events, never on the whole device.

    Host tables need not be pinned: pulls always go through the pool's own
    pinned buffers, and a push into an unpinned table (*e.g.*, a
    memory-mapped :obj:`"disk"` history) is copied to a pinned staging
    tensor on the side stream and written into the table by
    :meth:`synchronize_push`.

    Histories of different dtypes share the pool: the buffers are raw bytes,
    viewed as each history's dtype, so :obj:`dtype` must be (at least as wide
    as) the widest of them.

    Pulls are served first-in first-out: :meth:`synchronize_pull` returns the
    rows of the oldest outstanding :meth:`async_pull`.

    Args:
        pool_size (int): The number of staging buffers and streams, *i.e.*
            how many pulls may be in flight at once (typically the number of
            histories).
        buffer_size (int): The number of rows each staging buffer holds; it
            must be at least the largest number of rows a single pull reads
            (the largest halo of a mini-batch).
        channels (int): The widest history row the pool serves.
        dtype (torch.dtype, optional): The widest history dtype the pool
            serves; buffers hold :obj:`buffer_size * channels` elements of
            it and narrower dtypes reuse the same bytes.
            (default: :obj:`torch.float32`)
    """
    def __init__(self, pool_size: int, buffer_size: int, channels: int,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, value in (('pool_size', pool_size),
                            ('buffer_size', buffer_size),
                            ('channels', channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' of AsyncIOPool must be a "
                                 f"positive integer (got {value!r})")
        self.pool_size = pool_size
        self.buffer_size = buffer_size
        self.channels = channels
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"'dtype' of AsyncIOPool must be a floating "
                             f"point torch.dtype such as torch.float32, as "
                             f"histories are (got {dtype!r})")
        self.dtype = dtype
        self.capacity = buffer_size * channels * dtype.itemsize  # in bytes

        self._device = torch.device('cpu')
        self._pull_queue: Deque[Tuple[int, int, int, torch.dtype]] = deque()
        # Pushes into unpinned tables, oldest first: (rows on the GPU, their
        # pinned copy, offset, count, table, event of the copy).
        self._push_staged: Deque[Tuple[Tensor, Tensor, Tensor, Tensor,
                                       Tensor, Any]] = deque()
        self._pull_index = -1
        self._push_index = -1
        self._allocated_for: Optional[torch.device] = None

    def _apply(self, fn, recurse=True):
        self._device = fn(torch.zeros(1, device=self._device)).device
        return self

    @property
    def num_pending_pulls(self) -> int:
        r"""The number of pulls started but not yet synchronized."""
        return len(self._pull_queue)

    @property
    def active(self) -> bool:
        r"""Whether the pool serves I/O, *i.e.* it is on a CUDA device."""
        return self._device.type == 'cuda'

    def _allocate(self):
        if self._allocated_for == self._device:
            return
        if not self.active:
            raise RuntimeError(
                "AsyncIOPool serves CUDA devices only; move the model to a "
                "GPU with 'model.to(\"cuda\")' or run without a pool")
        dev = self._device
        with torch.cuda.device(dev):
            self._cpu_buffers = [
                torch.empty(self.capacity, dtype=torch.uint8, pin_memory=True)
                for _ in range(self.pool_size)
            ]
            self._cuda_buffers = [
                torch.empty(self.capacity, dtype=torch.uint8, device=dev)
                for _ in range(self.pool_size)
            ]
            self._pull_streams = [
                torch.cuda.Stream(dev) for _ in range(self.pool_size)
            ]
            self._push_streams = [
                torch.cuda.Stream(dev) for _ in range(self.pool_size)
            ]
            # Recorded once a pull's H2D copy was enqueued: the host waits on
            # it before it gathers into the same pinned buffer again.
            self._pull_events = [
                torch.cuda.Event() for _ in range(self.pool_size)
            ]
        self._pull_index = -1
        self._push_index = -1
        self._allocated_for = dev

    def _views(self, i: int, rows: int, channels: int,
               dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        if channels > self.channels or dtype.itemsize > self.dtype.itemsize:
            raise ValueError(
                f"AsyncIOPool was built for rows of {self.channels} "
                f"{self.dtype} values but a history holds {channels} "
                f"{dtype} values; create the pool with "
                f"channels >= {channels} and a dtype at least as wide as "
                f"{dtype}")
        if rows > self.buffer_size:
            raise ValueError(
                f"AsyncIOPool buffers hold {self.buffer_size} rows but this "
                f"pull reads {rows}; create the pool with "
                f"buffer_size >= {rows}")
        nbytes = rows * channels * dtype.itemsize
        cpu = self._cpu_buffers[i][:nbytes].view(dtype).view(rows, channels)
        gpu = self._cuda_buffers[i][:nbytes].view(dtype).view(rows, channels)
        return cpu, gpu

    def async_pull(self, src: Tensor, offset: Optional[Tensor],
                   count: Optional[Tensor], index: Tensor) -> None:
        r"""Starts reading the rows :obj:`src[offset[i]:offset[i]+count[i]]`
        for every run, followed by :obj:`src[index]`, to the GPU.

        Args:
            src (torch.Tensor): A pinned host table.
            offset (torch.Tensor, optional): Starts of contiguous runs.
            count (torch.Tensor, optional): Lengths of contiguous runs.
            index (torch.Tensor): Further single rows to read.
        """
        self._allocate()
        i = self._pull_index = (self._pull_index + 1) % self.pool_size
        rows = index.numel()
        if count is not None:
            rows += int(count.sum())
        cpu, gpu = self._views(i, rows, src.size(1), src.dtype)
        # The previous copy out of this pinned buffer must be finished before
        # the worker overwrites it, and the compute stream must be done with
        # the previous contents of the device buffer.
        self._pull_events[i].synchronize()
        stream = self._pull_streams[i]
        stream.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(stream):
            ops.read_async(src, offset, count, index, cpu, gpu)
        self._pull_queue.append((i, rows, src.size(1), src.dtype))

    def synchronize_pull(self) -> Tensor:
        r"""Waits (on the GPU) for the oldest outstanding pull and returns its
        rows as a device tensor, valid until the pool is used
        :obj:`pool_size` more times."""
        if len(self._pull_queue) == 0:
            raise RuntimeError("synchronize_pull() called without an "
                               "outstanding async_pull()")
        i, rows, channels, dtype = self._pull_queue.popleft()
        ops.synchronize()  # The worker has enqueued every copy so far.
        event = self._pull_events[i]
        event.record(self._pull_streams[i])
        torch.cuda.current_stream(self._device).wait_event(event)
        return self._views(i, rows, channels, dtype)[1]

    def async_push(self, src: Tensor, offset: Tensor, count: Tensor,
                   dst: Tensor) -> None:
        r"""Starts writing the rows of :obj:`src` (on the GPU) into the runs
        :obj:`dst[offset[i]:offset[i]+count[i]]` of a pinned host table.

        An unpinned :obj:`dst` (*e.g.*, a memory-mapped table) receives the
        rows from a pinned staging copy on the host, at the latest in
        :meth:`synchronize_push`; at most :obj:`pool_size` such copies are
        kept at a time.

        Args:
            src (torch.Tensor): Embeddings on the GPU.
            offset (torch.Tensor): Starts of contiguous runs.
            count (torch.Tensor): Lengths of contiguous runs.
            dst (torch.Tensor): A host table.
        """
        self._allocate()
        i = self._push_index = (self._push_index + 1) % self.pool_size
        src = src.detach().to(dst.dtype).contiguous()
        stream = self._push_streams[i]
        stream.wait_stream(torch.cuda.current_stream(self._device))
        if dst.is_pinned():
            # No reference kept here: the native worker holds 'src' until its
            # copies have landed (the fallback copies synchronously), so a
            # layer-wise inference does not keep every batch's output on the
            # GPU until the layer ends.
            with torch.cuda.stream(stream):
                ops.write_async(src, offset, count, dst)
            return
        # cudaMemcpyAsync needs pinned host memory: stage the rows and
        # scatter them into the table once the copy has landed.
        stage = torch.empty(src.size(), dtype=src.dtype, pin_memory=True)
        event = torch.cuda.Event()
        with torch.cuda.stream(stream):
            stage.copy_(src, non_blocking=True)
            event.record(stream)
        self._push_staged.append(
            (src, stage, offset.cpu(), count.cpu(), dst, event))
        while len(self._push_staged) > self.pool_size:
            self._land_staged_push()

    def _land_staged_push(self) -> None:
        _, stage, offset, count, dst, event = self._push_staged.popleft()
        event.synchronize()
        ops.write_async(stage, offset, count, dst)  # On the host, in order.

    def synchronize_push(self) -> None:
        r"""Waits (on the host) until every outstanding push has landed in
        its host table."""
        if self._allocated_for is None:
            return
        ops.synchronize()
        for stream in self._push_streams:
            stream.synchronize()
        while len(self._push_staged) > 0:
            self._land_staged_push()

    def synchronize(self) -> None:
        r"""Waits for every outstanding pull and push."""
        while len(self._pull_queue) > 0:
            self.synchronize_pull()
        self.synchronize_push()

    def extra_repr(self) -> str:
        return (f'pool_size={self.pool_size}, '
                f'buffer_size={self.buffer_size}, channels={self.channels}')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.extra_repr()})'
