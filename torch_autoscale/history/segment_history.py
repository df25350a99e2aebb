import operator
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from torch_autoscale.history.history import DeviceLike, History, check_index


def _to_num_segments(num_segments: Union[Tensor, Sequence[int]]) -> Tensor:
    fix = ("pass a one-dimensional integer tensor or a sequence of ints "
           "with at least one segment per graph")
    if isinstance(num_segments, Tensor):
        if num_segments.dim() != 1:
            raise ValueError(f"'num_segments' must be one-dimensional (got "
                             f"shape {tuple(num_segments.size())}); {fix}")
        if (num_segments.is_floating_point() or num_segments.is_complex()
                or num_segments.dtype == torch.bool):
            raise ValueError(f"'num_segments' must hold integers (got dtype "
                             f"{num_segments.dtype}); {fix}")
        out = num_segments.detach().cpu().long()
    else:
        if not isinstance(num_segments, Sequence):
            raise ValueError(f"'num_segments' must be a tensor or a sequence "
                             f"(got {type(num_segments).__name__!r}); {fix}")
        values = []
        for value in num_segments:
            try:
                if isinstance(value, bool):
                    raise TypeError
                values.append(operator.index(value))
            except TypeError:
                raise ValueError(f"'num_segments' must hold integers (got "
                                 f"{value!r}); {fix}") from None
        out = torch.tensor(values, dtype=torch.long)
    if out.numel() == 0:
        raise ValueError(f"'num_segments' is empty; {fix}")
    if int(out.min()) < 1:
        raise ValueError(f"'num_segments' must be at least 1 for every graph "
                         f"(got {int(out.min())}); {fix}")
    return out


class SegmentHistory(torch.nn.Module):
    r"""A table of historical embeddings with one row per *segment* of every
    graph of a dataset, as used by Graph Segment Training
    (`GST <https://arxiv.org/abs/2305.12322>`_).

    GST splits every graph :math:`g` of a dataset into :math:`J(g)` segments
    (see :class:`~torch_autoscale.segment.SegmentedDataset`), back-propagates
    through a few sampled segments per graph only, and reads the embeddings
    of all other segments from this table. Rows are stored flat, graph after
    graph: segment :obj:`j` of graph :obj:`g` is row
    :obj:`seg_ptr[g] + j`. The rows live in a
    :class:`~torch_autoscale.history.History` (:attr:`table`), whose
    placement, storage dtype and checks apply; the segment table addresses
    them by (graph, segment) pairs instead of node indices, so it wraps a
    history rather than being one.

    The boolean vector :obj:`written` (on the CPU, one entry per row) tells
    which rows hold a pushed embedding: it is set by :meth:`push` and cleared
    by :meth:`reset_parameters`, so never-written rows (still zero) can be
    told apart from genuine embeddings.

    Args:
        num_segments (torch.Tensor or Sequence[int]): The number of segments
            :math:`J(g) \geq 1` of every graph, of shape :obj:`[num_graphs]`.
        channels (int): The embedding width of a segment.
        device (torch.device or str, optional): The device of a
            :obj:`"device"` table. (default: :obj:`None`)
        dtype (torch.dtype, optional): The storage dtype, *e.g.*,
            :obj:`torch.float16` to halve history memory. Pushed embeddings
            are cast to it and pulled ones back to
            :obj:`torch.get_default_dtype()`. (default: :obj:`None`, the
            default dtype)
        storage (str, optional): The storage tier, :obj:`"device"`,
            :obj:`"host"` or :obj:`"disk"` (see
            :class:`~torch_autoscale.history.History`).
            (default: :obj:`None`, :obj:`"device"` if :obj:`device` is given
            and not the CPU, :obj:`"host"` otherwise)
        directory (str, optional): The folder of a :obj:`"disk"` table's file.
            (default: :obj:`None`, :func:`tempfile.gettempdir`)
        keep_file (bool, optional): Whether a :obj:`"disk"` table's file
            outlives the history. (default: :obj:`False`)

    Shapes:
        - **pull**: graph and segment indices :math:`(B,)` each, or none →
          :math:`(B, C)` or :math:`(\sum_g J(g), C)`
        - **push**: embeddings :math:`(B, C)` with graph and segment indices
          :math:`(B,)` each, or embeddings :math:`(\sum_g J(g), C)` for the
          whole table
        - **pull_graphs**: graph indices :math:`(G',)` →
          :math:`(\sum_{g \in G'} J(g), C)` and batch vector
          :math:`(\sum_{g \in G'} J(g),)`

    Example:
        >>> history = SegmentHistory([3, 1, 4], channels=8)
        >>> graph, segment = torch.tensor([0, 2]), torch.tensor([1, 3])
        >>> history.push(torch.randn(2, 8), graph, segment)
        >>> history.index(graph, segment)
        tensor([1, 7])
        >>> x, batch = history.pull_graphs(torch.tensor([2, 1]))
        >>> x.size(), batch
        (torch.Size([5, 8]), tensor([0, 0, 0, 0, 1]))
    """
    def __init__(self, num_segments: Union[Tensor, Sequence[int]],
                 channels: int, device: DeviceLike = None,
                 dtype: Optional[torch.dtype] = None,
                 storage: Optional[str] = None,
                 directory: Optional[str] = None, keep_file: bool = False):
        num_segments = _to_num_segments(num_segments)
        super().__init__()
        #: The flat table of :obj:`sum(num_segments)` rows.
        self.table = History(int(num_segments.sum()), channels, device=device,
                             dtype=dtype, storage=storage,
                             directory=directory, keep_file=keep_file)
        self.num_graphs = num_segments.numel()
        self.num_segments = num_segments
        # Plain CPU attributes (no buffers): like the table, they stay where
        # they are when the owning model moves.
        self.seg_ptr = num_segments.new_zeros(self.num_graphs + 1)
        torch.cumsum(num_segments, dim=0, out=self.seg_ptr[1:])
        self.written = torch.zeros(self.num_rows, dtype=torch.bool)

    @property
    def num_rows(self) -> int:
        r"""The number of rows, :obj:`sum(num_segments)`."""
        return self.table.num_nodes

    @property
    def channels(self) -> int:
        return self.table.channels

    @property
    def dtype(self) -> torch.dtype:
        return self.table.dtype

    @property
    def device(self) -> torch.device:
        r"""The device pulled rows are returned on (the model's)."""
        return self.table.device

    @property
    def storage(self) -> str:
        return self.table.storage

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + self.written.numel()

    @property
    def path(self) -> Optional[str]:
        return self.table.path

    def close(self) -> None:
        r"""Releases the table (see :meth:`History.close`)."""
        self.table.close()

    def reset_parameters(self):
        r"""Fills the table with zeros and marks every row as unwritten."""
        self.table.reset_parameters()
        self.written.fill_(False)

    def state(self) -> Dict[str, Any]:
        r"""The contents to checkpoint: the table's (see
        :meth:`History.state`) and the :obj:`written` mask."""
        return dict(self.table.state(), written=self.written)

    @torch.no_grad()
    def load_state(self, state: Dict[str, Any],
                   chunk_rows: int = 1 << 20) -> None:
        r"""Restores :meth:`state` (see :meth:`History.load_state`)."""
        self.table.load_state(state, chunk_rows)
        if state.get('written') is not None:
            self.written.copy_(state['written'])

    def _check_graph(self, graph: Tensor) -> None:
        check_index('graph', graph)
        if graph.numel() > 0 and (int(graph.min()) < 0
                                  or int(graph.max()) >= self.num_graphs):
            raise ValueError(f"'graph' holds indices outside [0, "
                             f"{self.num_graphs}) of this SegmentHistory")

    def index(self, graph: Tensor, segment: Tensor) -> Tensor:
        r"""Returns the flat row :obj:`seg_ptr[graph] + segment` of every
        (graph, segment) pair, on the device of :obj:`graph`.

        Args:
            graph (torch.Tensor): The graph index of every pair, an
                :obj:`int64` tensor of shape :obj:`[B]`.
            segment (torch.Tensor): The segment index of every pair within
                its graph, an :obj:`int64` tensor of shape :obj:`[B]`.
        """
        self._check_graph(graph)
        check_index('segment', segment)
        if graph.numel() != segment.numel():
            raise ValueError(f"'graph' ({graph.numel()}) and 'segment' "
                             f"({segment.numel()}) differ in length; pass "
                             f"one segment index per graph index")
        segment = segment.to(graph.device)
        if segment.numel() > 0:
            num = self.num_segments.to(graph.device)[graph]
            if bool(((segment < 0) | (segment >= num)).any()):
                raise ValueError(
                    "'segment' holds indices outside [0, J(graph)) for the "
                    "graph of the same position; graph g has only "
                    "'num_segments[g]' segments")
        return self.seg_ptr.to(graph.device)[graph] + segment

    def _flat(self, graph: Optional[Tensor],
              segment: Optional[Tensor]) -> Optional[Tensor]:
        if (graph is None) != (segment is None):
            raise ValueError("'graph' and 'segment' must be given together "
                             "(or both left out to address every row)")
        return None if graph is None else self.index(graph, segment)

    @torch.no_grad()
    def pull(self, graph: Optional[Tensor] = None,
             segment: Optional[Tensor] = None) -> Tensor:
        r"""Returns the rows of the (graph, segment) pairs (all rows if both
        are :obj:`None`) on the model's device, in the default dtype.

        Args:
            graph (torch.Tensor, optional): The graph index of every pair.
                (default: :obj:`None`)
            segment (torch.Tensor, optional): The segment index of every
                pair. (default: :obj:`None`)
        """
        return self.table.pull(self._flat(graph, segment))

    @torch.no_grad()
    def push(self, x: Tensor, graph: Optional[Tensor] = None,
             segment: Optional[Tensor] = None) -> None:
        r"""Writes :obj:`x` into the rows of the (graph, segment) pairs, or
        into the whole table if both are :obj:`None`, and marks these rows
        as :obj:`written`.

        Args:
            x (torch.Tensor): The segment embeddings to write, on the model's
                device.
            graph (torch.Tensor, optional): The graph index of every row of
                :obj:`x`. (default: :obj:`None`)
            segment (torch.Tensor, optional): The segment index of every row
                of :obj:`x`. (default: :obj:`None`)
        """
        n_id = self._flat(graph, segment)
        if n_id is not None and isinstance(x, Tensor) and x.dim() == 2 and (
                x.size(0) != n_id.numel()):
            raise ValueError(f"'graph' and 'segment' have {n_id.numel()} "
                             f"entries but 'x' has {x.size(0)} rows; pass "
                             f"one (graph, segment) pair per row")
        self.table.push(x, n_id=n_id)
        if n_id is None:
            self.written.fill_(True)
        else:
            self.written[n_id.cpu()] = True

    @torch.no_grad()
    def pull_graphs(self, graph: Tensor) -> Tuple[Tensor, Tensor]:
        r"""Returns every row of the graphs :obj:`graph`, graph after graph
        and segment after segment, on the model's device, together with the
        position in :obj:`graph` that every row belongs to, *e.g.*, to pool
        all segments of a graph via :obj:`scatter(x, batch, reduce='mean')`.

        Args:
            graph (torch.Tensor): The graph indices, an :obj:`int64` tensor
                of shape :obj:`[G']`.

        Returns:
            (torch.Tensor, torch.Tensor): The rows of shape
            :obj:`[sum(num_segments[graph]), channels]` and the :obj:`int64`
            batch vector of shape :obj:`[sum(num_segments[graph])]`.
        """
        self._check_graph(graph)
        graph = graph.cpu()
        count = self.num_segments[graph]
        batch = torch.repeat_interleave(torch.arange(graph.numel()), count)
        # Row of every output: the first row of its graph plus its rank
        # among the rows of that graph.
        start = self.seg_ptr[graph] - (torch.cumsum(count, dim=0) - count)
        n_id = start[batch] + torch.arange(batch.numel())
        return self.table.pull(n_id), batch.to(self.device)

    def extra_repr(self) -> str:
        return (f'num_graphs={self.num_graphs}, num_rows={self.num_rows}, '
                f'{self.channels}, dtype={self.dtype}, '
                f'{self.table.location()}')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.extra_repr()})'
