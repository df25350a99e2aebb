r"""Splitting every graph of a dataset into segments for Graph Segment
Training (`GST <https://arxiv.org/abs/2305.12322>`_).

:func:`segment_graph` cuts one graph into segments of at most
:obj:`max_segment_size` nodes, and :class:`SegmentedDataset` does so for
every graph of a dataset, caching the result on disk.
"""
import logging
import math
import operator
import os
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Data
from tqdm.auto import tqdm

from torch_autoscale.partition import partition, permute, sort_by_cluster
from torch_autoscale.utils.checks import check_int

log = logging.getLogger(__name__)

SEGMENT_METHODS: Tuple[str, ...] = ('metis', 'lpmetis', 'contiguous',
                                     'random')
r"""The ways :func:`segment_graph` can split a graph."""


def _check_max_segment_size(max_segment_size: Any) -> int:
    if not isinstance(max_segment_size, bool):
        try:
            max_segment_size = operator.index(max_segment_size)
        except TypeError:
            pass
        else:
            if max_segment_size >= 1:
                return max_segment_size
    raise ValueError(f"'max_segment_size' must be an integer >= 1 (got "
                     f"{max_segment_size!r}); pass the largest number of "
                     f"nodes a segment may hold")


def _check_method(method: Any) -> str:
    if method not in SEGMENT_METHODS:
        raise ValueError(f"'method' must be one of {SEGMENT_METHODS} (got "
                         f"{method!r})")
    return method


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"'seed' must be an integer (got {seed!r})")
    return seed


def _split_parts(ptr: Tensor, max_segment_size: int) -> Tensor:
    r"""Drops empty parts and splits every part larger than
    :obj:`max_segment_size` into balanced consecutive chunks."""
    size = ptr.diff()
    size = size[size > 0]
    num_chunks = torch.div(size + max_segment_size - 1, max_segment_size,
                           rounding_mode='floor')
    # Chunk c of a part of size s split into k chunks gets
    # s // k + (c < s % k) nodes:
    part = torch.repeat_interleave(torch.arange(size.numel()), num_chunks)
    rank = torch.arange(part.numel()) - torch.repeat_interleave(
        torch.cumsum(num_chunks, dim=0) - num_chunks, num_chunks)
    chunk = torch.div(size[part], num_chunks[part], rounding_mode='floor')
    chunk += (rank < size[part] % num_chunks[part]).long()
    out = ptr.new_zeros(chunk.numel() + 1)
    torch.cumsum(chunk, dim=0, out=out[1:])
    return out


def segment_graph(
    edge_index: Tensor,
    num_nodes: int,
    max_segment_size: int,
    method: str = 'metis',
    seed: int = 0,
) -> Tuple[Tensor, Tensor]:
    r"""Splits a graph into segments of at most :obj:`max_segment_size` nodes,
    as used by the `"Learning Large Graph Property Prediction via Graph
    Segment Training" <https://arxiv.org/abs/2305.12322>`_ paper.

    The graph is first split into
    :math:`J = \lceil \text{num_nodes} / \text{max_segment_size} \rceil`
    parts, by one of the :obj:`SEGMENT_METHODS`:

    * :obj:`"metis"` clusters the graph via
      :func:`~torch_autoscale.partition.metis`, so that few edges run between
      segments. METIS balances part sizes only approximately, so parts larger
      than :obj:`max_segment_size` are split into balanced consecutive
      chunks and empty parts are dropped: the number of segments may exceed
      :math:`J`. A graph of at most :obj:`max_segment_size` nodes is a single
      segment, without calling METIS.
    * :obj:`"contiguous"` keeps the node order and cuts it every
      :obj:`max_segment_size` nodes.
    * :obj:`"lpmetis"` clusters it via
      :func:`~torch_autoscale.partition.lpmetis` (for graphs too large for
      METIS), with oversized and empty parts handled as for METIS.
    * :obj:`"random"` assigns the nodes to :math:`J` parts of balanced sizes
      uniformly at random (deterministically for a given :obj:`seed`).

    Nodes keep their relative order inside a segment.

    Args:
        edge_index (torch.Tensor): The graph connectivity of shape
            :obj:`[2, num_edges]` (only read by :obj:`"metis"`).
        num_nodes (int): The number of nodes.
        max_segment_size (int): The largest number of nodes of a segment.
        method (str, optional): How to split the graph, one of
            :obj:`SEGMENT_METHODS`. (default: :obj:`"metis"`)
        seed (int, optional): The random seed of :obj:`"random"` and
            :obj:`"lpmetis"`. (default: :obj:`0`)

    Returns:
        (torch.Tensor, torch.Tensor): The node permutation :obj:`perm` of
        shape :obj:`[num_nodes]` (new node :obj:`i` is old node
        :obj:`perm[i]`, ready for :func:`~torch_autoscale.partition.permute`)
        and the :obj:`int64` segment boundaries :obj:`ptr` of shape
        :obj:`[num_segments + 1]`, such that segment :obj:`j` holds the new
        nodes :obj:`ptr[j]:ptr[j + 1]`; both on the CPU. Every segment holds
        between :obj:`1` and :obj:`max_segment_size` nodes.

    Raises:
        ValueError: If :obj:`max_segment_size`, :obj:`method` or
            :obj:`num_nodes` is invalid (or :obj:`edge_index`, for
            :obj:`"metis"`).

    Example:
        >>> edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])
        >>> perm, ptr = segment_graph(edge_index, 5, max_segment_size=2,
        ...                           method='contiguous')
        >>> perm, ptr
        (tensor([0, 1, 2, 3, 4]), tensor([0, 2, 4, 5]))
    """
    max_segment_size = _check_max_segment_size(max_segment_size)
    method = _check_method(method)
    num_nodes = check_int(num_nodes, 'num_nodes', 1,
                          fix='a segment cannot be empty')
    seed = _check_seed(seed)
    num_parts = math.ceil(num_nodes / max_segment_size)

    if method == 'contiguous':
        ptr = torch.arange(0, num_nodes + max_segment_size, max_segment_size)
        ptr[-1] = num_nodes
        return torch.arange(num_nodes), ptr

    if num_parts == 1:
        return torch.arange(num_nodes), torch.tensor([0, num_nodes])
    kwargs = dict(verbose=False) if 'metis' in method else {}
    # Through the project's one entry point; empty parts are dropped below,
    # and one log line per graph of a dataset would drown everything else.
    cluster = partition(edge_index, num_parts, method=method,
                        num_nodes=num_nodes, seed=seed, **kwargs).cpu()
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return perm, _split_parts(ptr, max_segment_size)


class SegmentedDataset(Dataset):
    r"""A dataset of graphs split into segments of at most
    :obj:`max_segment_size` nodes, for Graph Segment Training
    (`GST <https://arxiv.org/abs/2305.12322>`_).

    Every graph is split by :func:`segment_graph` and reordered via
    :func:`~torch_autoscale.partition.permute`, so that segment :obj:`j` of
    the returned graph is the contiguous node range
    :obj:`data.seg_ptr[j]:data.seg_ptr[j + 1]`. Graph-level attributes (such
    as :obj:`y`) and graphs without node features (such as those of
    :class:`~torch_geometric.datasets.MalNetTiny`) are kept as they are;
    :obj:`num_nodes` is set explicitly on every returned graph.

    Segmenting large datasets via METIS takes a while, so the permutation and
    boundaries of every graph are cached with :func:`torch.save`. A cache is
    reused only if it was made with the same :obj:`method`,
    :obj:`max_segment_size` and :obj:`seed` for the same number of graphs of
    the same sizes; otherwise it is recomputed and overwritten.

    .. note::
        :obj:`seg_ptr` is stored on every graph. Do not collate these graphs
        with :class:`~torch_geometric.loader.DataLoader` as they are: PyG
        would concatenate the boundaries of different graphs.

    Args:
        dataset (Sequence[torch_geometric.data.Data]): The graphs, *e.g.*, a
            :class:`~torch_geometric.datasets.MalNetTiny` or
            :class:`~torch_geometric.datasets.TUDataset`, or a list.
        max_segment_size (int): The largest number of nodes of a segment.
        method (str, optional): How to split every graph, one of
            :obj:`SEGMENT_METHODS`. (default: :obj:`"metis"`)
        seed (int, optional): The random seed of :obj:`"random"`.
            (default: :obj:`0`)
        cache (str or bool, optional): The file to cache segments in. If set
            to :obj:`None`, uses
            :obj:`segments_{method}_{max_segment_size}_{seed}.pt` inside
            :obj:`dataset.processed_dir` when :obj:`dataset` has one, and no
            cache otherwise. If set to :obj:`False`, no cache is read or
            written. (default: :obj:`None`)
        progress (bool, optional): If set to :obj:`False`, hides the progress
            bar. (default: :obj:`True`)

    Example:
        .. code-block:: python

            from torch_geometric.datasets import MalNetTiny

            dataset = SegmentedDataset(MalNetTiny(root), max_segment_size=256)
            data = dataset[0]  # Segment j: nodes seg_ptr[j]:seg_ptr[j + 1].
            history = SegmentHistory(dataset.num_segments, channels=64)
    """
    def __init__(
        self,
        dataset: Sequence[Data],
        max_segment_size: int,
        method: str = 'metis',
        seed: int = 0,
        cache: Union[str, os.PathLike, bool, None] = None,
        progress: bool = True,
    ):
        super().__init__()
        self.max_segment_size = _check_max_segment_size(max_segment_size)
        self.method = _check_method(method)
        self.seed = _check_seed(seed)

        if cache is True or not isinstance(cache, (str, os.PathLike, bool,
                                                   type(None))):
            raise ValueError(f"'cache' must be a file path, None or False "
                             f"(got {cache!r})")
        if cache is None and getattr(dataset, 'processed_dir', None):
            cache = osp.join(
                dataset.processed_dir, f'segments_{method}_'
                f'{self.max_segment_size}_{seed}.pt')
        self.cache: Optional[str] = (None if cache is None or cache is False
                                     else os.fspath(cache))

        graphs: List[Data] = [dataset[i] for i in range(len(dataset))]
        num_nodes = [_num_nodes(data, i) for i, data in enumerate(graphs)]

        segments = self._load(num_nodes)
        if segments is None:
            segments = []
            for data, n in zip(tqdm(graphs, desc='Segmenting graphs',
                                    disable=not progress), num_nodes):
                edge_index = data.edge_index if 'edge_index' in data else (
                    torch.empty(2, 0, dtype=torch.long))
                segments.append(
                    segment_graph(edge_index, n, self.max_segment_size,
                                  self.method, self.seed))
            self._save(segments, num_nodes)

        self.graphs: List[Data] = []
        for data, n, (perm, ptr) in zip(graphs, num_nodes, segments):
            out = permute(data, perm)
            out.num_nodes = n
            out.seg_ptr = ptr
            self.graphs.append(out)
        self.num_segments = torch.tensor(
            [ptr.numel() - 1 for _, ptr in segments], dtype=torch.long)

    def _meta(self, num_nodes: List[int]) -> dict:
        return dict(method=self.method,
                    max_segment_size=self.max_segment_size, seed=self.seed,
                    num_nodes=torch.tensor(num_nodes, dtype=torch.long))

    def _load(self, num_nodes: List[int]) -> Optional[List[Tuple[Tensor,
                                                                 Tensor]]]:
        if self.cache is None or not osp.exists(self.cache):
            return None
        try:
            out = torch.load(self.cache, weights_only=True)
            meta = self._meta(num_nodes)
            if (any(out[key] != meta[key]
                    for key in ('method', 'max_segment_size', 'seed'))
                    or not torch.equal(out['num_nodes'], meta['num_nodes'])
                    or len(out['segments']) != len(num_nodes)):
                log.info(
                    "Segment cache '%s' was made for other settings or "
                    "graphs; recomputing it", self.cache)
                return None
            return [(perm, ptr) for perm, ptr in out['segments']]
        except Exception as e:
            log.info("Cannot read segment cache '%s' (%s); recomputing it",
                     self.cache, e)
            return None

    def _save(self, segments: List[Tuple[Tensor, Tensor]],
              num_nodes: List[int]) -> None:
        if self.cache is None:
            return
        directory = osp.dirname(self.cache)
        if directory:
            os.makedirs(directory, exist_ok=True)
        out = self._meta(num_nodes)
        out['segments'] = [[perm, ptr] for perm, ptr in segments]
        torch.save(out, self.cache)
        log.info("Saved the segments of %d graphs to '%s'", len(segments),
                 self.cache)

    @property
    def y(self) -> Optional[Tensor]:
        r"""The labels of all graphs, concatenated (:obj:`None` unless every
        graph has :obj:`y`)."""
        if len(self.graphs) == 0 or not all('y' in data
                                            for data in self.graphs):
            return None
        return torch.cat([data.y.view(-1) for data in self.graphs])

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, idx: int) -> Data:
        return self.graphs[idx]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'max_segment_size={self.max_segment_size}, '
                f'method={self.method!r})')


def _num_nodes(data: Data, i: int) -> int:
    num_nodes = data.num_nodes
    if num_nodes is None or num_nodes < 1:
        raise ValueError(f"Graph {i} of 'dataset' has no nodes (num_nodes="
                         f"{num_nodes}); every graph needs at least one node "
                         f"to be segmented")
    return int(num_nodes)
