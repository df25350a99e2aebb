r"""Mini-batches of graphs for Graph Segment Training: for every graph, the
sampled segments' subgraphs (trained with gradients) and the ids of the other
segments (read from the table, or run without gradients)."""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Batch, Data

_SEGMENT_KEYS = ('x', 'edge_index', 'edge_attr')


class Segments(NamedTuple):
    r"""Segments of several graphs of a mini-batch.

    Attributes:
        data (torch_geometric.data.Batch, optional): The segments' induced
            subgraphs, one PyG graph per segment (its :obj:`batch` vector maps
            nodes to segments); :obj:`None` when only ids were asked for or
            there are no segments.
        graph (torch.Tensor): For every segment, the position of its graph in
            the mini-batch, in :obj:`[0, batch_size)`.
        segment (torch.Tensor): For every segment, its index within its
            graph.
    """
    data: Optional[Batch]
    graph: Tensor
    segment: Tensor

    def to(self, device: Union[str, torch.device]) -> 'Segments':
        data = None if self.data is None else self.data.to(device)
        return Segments(data, self.graph.to(device), self.segment.to(device))


class SegmentBatch(NamedTuple):
    r"""A mini-batch of Graph Segment Training.

    Attributes:
        graph_id (torch.Tensor): The dataset index of every graph, shape
            :obj:`[batch_size]`.
        y (torch.Tensor): The graph labels.
        num_segments (torch.Tensor): The number of segments :math:`J` of
            every graph.
        sampled (Segments): The sampled segments (all segments of every
            graph when the loader samples all).
        others (Segments): The other segments; their subgraphs only if the
            loader was asked for them (:obj:`others=True`).
        whole (torch_geometric.data.Batch, optional): The whole graphs, for
            full-graph training (:obj:`whole=True`).
    """
    graph_id: Tensor
    y: Tensor
    num_segments: Tensor
    sampled: Segments
    others: Segments
    whole: Optional[Batch]

    @property
    def batch_size(self) -> int:
        return self.graph_id.numel()

    def to(self, device: Union[str, torch.device]) -> 'SegmentBatch':
        return SegmentBatch(
            self.graph_id.to(device), self.y.to(device),
            self.num_segments.to(device), self.sampled.to(device),
            self.others.to(device),
            None if self.whole is None else self.whole.to(device))


def _plain(data: Data) -> Data:
    # The attributes a backbone consumes, without 'seg_ptr' (which batching
    # would concatenate meaninglessly).
    out = Data(num_nodes=data.num_nodes)
    for key in _SEGMENT_KEYS:
        if key in data:
            out[key] = data[key]
    return out


class SegmentCollater:
    r"""Builds :class:`SegmentBatch` objects from graph indices of a segmented
    dataset (see :class:`SegmentLoader` for the arguments)."""
    def __init__(self, dataset: Sequence[Data],
                 num_sampled: Optional[int] = 1, others: bool = False,
                 whole: bool = False):
        if num_sampled is not None and (not isinstance(num_sampled, int)
                                        or num_sampled < 1):
            raise ValueError(f"'num_sampled' must be a positive integer, or "
                             f"None for all segments (got {num_sampled!r})")
        self.dataset = dataset
        self.num_sampled = num_sampled
        self.others = others
        self.whole = whole
        # Per graph: edges sorted by segment, and their segment pointers.
        self._edges: Dict[int, Tuple[Tensor, Tensor, Optional[Tensor]]] = {}

    def _segment_edges(
            self, index: int,
            data: Data) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        if index not in self._edges:
            seg_ptr = data.seg_ptr
            num_segments = seg_ptr.numel() - 1
            edge_index = data.edge_index
            node_seg = torch.repeat_interleave(
                torch.arange(num_segments), seg_ptr.diff())
            src_seg, dst_seg = node_seg[edge_index[0]], node_seg[edge_index[1]]
            # Induced subgraphs: edges between segments are dropped.
            keep = (src_seg == dst_seg).nonzero().view(-1)
            order = keep[torch.sort(src_seg[keep], stable=True).indices]
            edge_ptr = torch.zeros(num_segments + 1, dtype=torch.long)
            torch.cumsum(torch.bincount(src_seg[order],
                                        minlength=num_segments), 0,
                         out=edge_ptr[1:])
            edge_attr = data.edge_attr[order] if 'edge_attr' in data else None
            self._edges[index] = (edge_index[:, order], edge_ptr, edge_attr)
        return self._edges[index]

    def segment(self, index: int, data: Data, j: int) -> Data:
        r"""The induced subgraph of segment :obj:`j` of graph :obj:`data`
        (dataset index :obj:`index`)."""
        start, end = int(data.seg_ptr[j]), int(data.seg_ptr[j + 1])
        edge_index, edge_ptr, edge_attr = self._segment_edges(index, data)
        e0, e1 = int(edge_ptr[j]), int(edge_ptr[j + 1])
        out = Data(edge_index=edge_index[:, e0:e1] - start,
                   num_nodes=end - start)
        if 'x' in data:
            out.x = data.x[start:end]
        if edge_attr is not None:
            out.edge_attr = edge_attr[e0:e1]
        return out

    def _segments(self, graphs: List[Tuple[int, Data]], pos: List[int],
                  seg: List[int], build: bool) -> Segments:
        data = None
        if build and len(pos) > 0:
            data = Batch.from_data_list([
                self.segment(graphs[p][0], graphs[p][1], j)
                for p, j in zip(pos, seg)
            ])
        return Segments(data, torch.tensor(pos, dtype=torch.long),
                        torch.tensor(seg, dtype=torch.long))

    def __call__(self, indices: Sequence[int]) -> SegmentBatch:
        indices = [int(i) for i in indices]
        graphs = [(i, self.dataset[i]) for i in indices]
        s_pos, s_seg, o_pos, o_seg, counts = [], [], [], [], []
        for p, (_, data) in enumerate(graphs):
            if 'seg_ptr' not in data:
                raise ValueError("graphs must carry 'seg_ptr'; wrap the "
                                 "dataset in 'SegmentedDataset'")
            num_segments = data.seg_ptr.numel() - 1
            counts.append(num_segments)
            if self.num_sampled is None or self.num_sampled >= num_segments:
                chosen = torch.arange(num_segments)
            else:
                chosen = torch.randperm(num_segments)[:self.num_sampled]
                chosen = chosen.sort().values
            mask = torch.zeros(num_segments, dtype=torch.bool)
            mask[chosen] = True
            s_seg += chosen.tolist()
            s_pos += [p] * chosen.numel()
            rest = (~mask).nonzero().view(-1).tolist()
            o_seg += rest
            o_pos += [p] * len(rest)
        y = torch.cat([data.y.view(-1)[:1] for _, data in graphs])
        whole = None
        if self.whole:
            whole = Batch.from_data_list([_plain(d) for _, d in graphs])
        return SegmentBatch(
            torch.tensor(indices, dtype=torch.long), y,
            torch.tensor(counts, dtype=torch.long),
            self._segments(graphs, s_pos, s_seg, True),
            self._segments(graphs, o_pos, o_seg, self.others), whole)


class SegmentLoader(DataLoader):
    r"""Mini-batches of graphs of a
    :class:`~torch_autoscale.segment.SegmentedDataset` for Graph Segment
    Training (`Cao et al., NeurIPS 2023 <https://arxiv.org/abs/2305.12322>`_).

    Every :class:`SegmentBatch` holds, per graph, :obj:`num_sampled` segments
    drawn uniformly without replacement (their induced subgraphs, batched for
    a backbone) and the ids of all other segments; those are read from the
    segment table, or, with :obj:`others=True`, come with their subgraphs
    too (plain GST runs them through the backbone without gradients).

    .. code-block:: python

        dataset = SegmentedDataset(MalNetTiny(root), max_segment_size=500)
        loader = SegmentLoader(dataset, batch_size=16, shuffle=True)
        for batch in loader:
            out = model(batch)  # A GSTModel.

    Args:
        dataset (SegmentedDataset): Graphs whose nodes are ordered by segment,
            each with a :obj:`seg_ptr` attribute.
        batch_size (int, optional): Graphs per mini-batch. (default: :obj:`1`)
        shuffle (bool, optional): Whether to reshuffle graphs every epoch.
            (default: :obj:`False`)
        num_sampled (int, optional): Sampled segments per graph; :obj:`None`
            samples all of them (evaluation, table refresh).
            (default: :obj:`1`)
        others (bool, optional): Whether to build the subgraphs of the
            segments that are not sampled. (default: :obj:`False`)
        whole (bool, optional): Whether to batch the whole graphs as well,
            for full-graph training. (default: :obj:`False`)
        indices (sequence of int, optional): The graphs to iterate over,
            *e.g.*, a training split. (default: :obj:`None`, all graphs)
        **kwargs (optional): Further arguments of
            :class:`torch.utils.data.DataLoader`, such as :obj:`num_workers`.
    """
    def __init__(self, dataset: Sequence[Data], batch_size: int = 1,
                 shuffle: bool = False, num_sampled: Optional[int] = 1,
                 others: bool = False, whole: bool = False,
                 indices: Optional[Sequence[int]] = None, **kwargs):
        if len(dataset) == 0:
            raise ValueError("'dataset' holds no graphs")
        if 'collate_fn' in kwargs:
            raise ValueError("'SegmentLoader' builds its own 'collate_fn'")
        self.collater = SegmentCollater(dataset, num_sampled, others, whole)
        if indices is None:
            indices = range(len(dataset))
        indices = [int(i) for i in indices]
        if len(indices) > 0 and (min(indices) < 0
                                 or max(indices) >= len(dataset)):
            raise ValueError(f"'indices' must lie in [0, {len(dataset)})")
        self.segmented = dataset
        super().__init__(indices, batch_size=batch_size, shuffle=shuffle,
                         collate_fn=self.collater, **kwargs)
