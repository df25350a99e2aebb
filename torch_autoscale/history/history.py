from typing import Optional, Union

import torch
from torch import Tensor

DeviceLike = Union[str, torch.device, None]


def _check_index(name: str, index: Optional[Tensor]) -> None:
    if index is None:
        return
    if not isinstance(index, Tensor) or index.dtype != torch.long:
        raise ValueError(f"'{name}' must be an int64 tensor (got "
                         f"{getattr(index, 'dtype', type(index))})")
    if index.dim() != 1:
        raise ValueError(f"'{name}' must be one-dimensional (got shape "
                         f"{tuple(index.size())})")


class History(torch.nn.Module):
    r"""A table of historical embeddings, one row per node, for one layer
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    During GAS training, every layer pushes the fresh embeddings of the nodes
    inside the current mini-batch and pulls the (stale) embeddings of the
    mini-batch's out-of-batch neighbours (its halo).

    By default the table lives in host memory (pinned when CUDA is available,
    so it can be copied asynchronously) and stays there when the owning model
    is moved with :meth:`torch.nn.Module.to`: :meth:`pull` returns rows on the
    model's device, and :meth:`push` accepts rows from it. Pass
    :obj:`device` to place the table on an accelerator on purpose.

    Args:
        num_nodes (int): The number of rows (nodes).
        channels (int): The embedding width of this layer.
        device (torch.device or str, optional): Where the table is stored.
            (default: :obj:`None`, host memory)
        dtype (torch.dtype, optional): The storage dtype, *e.g.*,
            :obj:`torch.float16` to halve history memory. Pushed embeddings
            are cast to it and pulled ones back to
            :obj:`torch.get_default_dtype()`. (default: :obj:`None`, the
            default dtype)

    Shapes:
        - **pull**: node indices :math:`(B,)` or none → :math:`(B, C)` or
          :math:`(N, C)`
        - **push**: embeddings :math:`(B, C)` with node indices :math:`(B,)`,
          or contiguous runs :obj:`offset`, :obj:`count` with
          :math:`\sum \text{count} = B`
    """
    def __init__(self, num_nodes: int, channels: int,
                 device: DeviceLike = None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        if not isinstance(num_nodes, int) or num_nodes < 0:
            raise ValueError(f"'num_nodes' must be a non-negative integer "
                             f"(got {num_nodes!r})")
        if not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"'channels' must be a positive integer (got "
                             f"{channels!r})")
        dtype = dtype or torch.get_default_dtype()
        if not dtype.is_floating_point:
            raise ValueError(f"'dtype' must be a floating point dtype such as "
                             f"torch.float32 or torch.float16 (got {dtype})")

        self.num_nodes = num_nodes
        self.channels = channels
        self.placed = device is not None
        device = torch.device(device or 'cpu')
        pin = device.type == 'cpu' and torch.cuda.is_available()
        self.emb = torch.empty(num_nodes, channels, device=device, dtype=dtype,
                               pin_memory=pin)
        # The device of the owning model: pulls return there.
        self._device = torch.device('cpu')
        self.reset_parameters()

    @property
    def dtype(self) -> torch.dtype:
        return self.emb.dtype

    @property
    def device(self) -> torch.device:
        r"""The device that pulled embeddings are returned on (the device
        of the owning model)."""
        return self._device

    def reset_parameters(self):
        r"""Fills the table with zeros."""
        self.emb.fill_(0)

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
        _check_index('n_id', n_id)
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
                :obj:`x`. (default: :obj:`None`)
            offset (torch.Tensor, optional): Start of each contiguous run.
                (default: :obj:`None`)
            count (torch.Tensor, optional): Length of each contiguous run.
                (default: :obj:`None`)
        """
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
        _check_index('n_id', n_id)
        _check_index('offset', offset)
        _check_index('count', count)
        if (offset is None) != (count is None):
            raise ValueError("'offset' and 'count' must be given together")

        x = x.detach()
        if offset is not None:
            if offset.numel() != count.numel():
                raise ValueError(f"'offset' ({offset.numel()}) and 'count' "
                                 f"({count.numel()}) differ in length")
            offset, count = offset.cpu(), count.cpu()
            total = int(count.sum()) if count.numel() > 0 else 0
            if total != x.size(0):
                raise ValueError(f"'count' sums to {total} but 'x' has "
                                 f"{x.size(0)} rows")
            if offset.numel() > 0 and (
                    int(offset.min()) < 0 or int(
                        (offset + count).max()) > self.num_nodes):
                raise ValueError(f"runs 'offset'/'count' exceed the "
                                 f"{self.num_nodes} rows of this History")
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
            self.emb.index_copy_(0, n_id.to(self.emb.device),
                                 x.to(self.emb.device, self.emb.dtype))
        else:
            if x.size(0) != self.num_nodes:
                raise ValueError(f"'x' has {x.size(0)} rows; without 'n_id' "
                                 f"or 'offset'/'count' it must cover all "
                                 f"{self.num_nodes} nodes")
            self.emb.copy_(x)

    def _apply(self, fn, recurse=True):
        # Track the model's device without moving the table: histories stay
        # in host memory unless they were placed on a device on purpose.
        self._device = fn(torch.zeros(1, device=self._device)).device
        return self

    def extra_repr(self) -> str:
        return (f'{self.num_nodes}, {self.channels}, dtype={self.dtype}, '
                f'storage={self.emb.device}')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.extra_repr()})'
