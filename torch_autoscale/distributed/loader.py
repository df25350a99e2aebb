r"""Mini-batches of clusters for data-parallel GAS: every process loads its
own clusters, every cluster once per epoch, and all processes take the same
number of steps."""
import hashlib
import logging
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Sampler
from torch_geometric.data import Data
from tqdm.auto import tqdm

from torch_autoscale.distributed.assignment import ClusterAssignment
from torch_autoscale.distributed.context import (
    collective,
    get_rank,
    get_world_size,
)
from torch_autoscale.loader.subgraph_loader import (
    SubgraphCollater,
    unwrap_single,
)

log = logging.getLogger(__name__)


def _split(items: List[int], parts: int) -> List[List[int]]:
    # Like numpy.array_split: the first len % parts groups get one more.
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def num_steps(assignment: ClusterAssignment, batch_size: int) -> int:
    r"""The number of mini-batches every process takes per epoch:
    :obj:`ceil(c / batch_size)` for the fewest clusters :obj:`c` any process
    owns, so that no process gets an empty batch (one with a cluster more
    puts it into one of its batches).

    Args:
        assignment (ClusterAssignment): Who owns which cluster.
        batch_size (int): Clusters per mini-batch of one process.

    Raises:
        ValueError: If :obj:`assignment` is not a
            :class:`ClusterAssignment` or :obj:`batch_size` is not a
            positive integer.
    """
    if not isinstance(assignment, ClusterAssignment):
        raise ValueError(f"'assignment' must be a ClusterAssignment (got "
                         f"{type(assignment).__name__})")
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError(f"'batch_size' (clusters per batch of one process) "
                         f"must be a positive integer (got {batch_size!r})")
    fewest = min(len(assignment.clusters(r))
                 for r in range(assignment.world_size))
    return -(-fewest // batch_size)


def _check_same_partition(ptr: Tensor, group) -> None:
    # Ranks that partitioned on their own may disagree (a different seed or
    # library version): every rank would then train on the wrong nodes.
    if get_world_size(group) == 1:
        return
    digest = hashlib.sha1(ptr.numpy().tobytes()).hexdigest()
    digests: List[Optional[str]] = [None] * get_world_size(group)
    with collective("'DistributedSubgraphLoader' (comparing partitions)",
                    group):
        dist.all_gather_object(digests, digest, group=group)
    if len(set(digests)) > 1:
        raise ValueError(
            "the processes hold different partitions ('ptr' differs between "
            "ranks); partition once, e.g. on rank 0, and share the result "
            "with torch.distributed.broadcast_object_list")


class DistributedClusterSampler(Sampler):
    r"""Yields, for one process, lists of the clusters it owns: every epoch
    each of its clusters once, in :obj:`num_steps` groups of about
    :obj:`batch_size` clusters, shuffled per epoch when :obj:`shuffle` is
    set (call :meth:`set_epoch` like with
    :class:`~torch.utils.data.distributed.DistributedSampler`).

    Args:
        assignment (ClusterAssignment): Who owns which cluster.
        rank (int): This process.
        batch_size (int): Clusters per mini-batch.
        shuffle (bool, optional): Whether to regroup the clusters every
            epoch. (default: :obj:`True`)
        seed (int, optional): The seed of the shuffling, the same on every
            process. (default: :obj:`0`)
    """
    def __init__(self, assignment: ClusterAssignment, rank: int,
                 batch_size: int, shuffle: bool = True, seed: int = 0):
        self.clusters = assignment.clusters(rank)
        self.steps = num_steps(assignment, batch_size)
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[List[int]]:
        clusters = self.clusters
        if self.shuffle:
            gen = torch.Generator().manual_seed(
                self.seed + 1_000_003 * self.epoch + self.rank)
            perm = torch.randperm(len(clusters), generator=gen).tolist()
            clusters = [clusters[i] for i in perm]
        return iter(_split(clusters, self.steps))


class DistributedSubgraphLoader(DataLoader):
    r"""The :class:`~torch_autoscale.loader.SubgraphLoader` of one process of
    data-parallel GAS: mini-batches of the clusters this process owns (see
    :class:`ClusterAssignment`) with their 1-hop halo. Every cluster is
    trained once per epoch by exactly one process, and every process yields
    the same number of batches (:func:`num_steps`), which
    :class:`~torch.nn.parallel.DistributedDataParallel` and the collectives
    of sharded histories need.

    .. code-block:: python

        loader = DistributedSubgraphLoader(data, ptr, batch_size=5,
                                           shuffle=True)
        for epoch in range(epochs):
            loader.set_epoch(epoch)
            for batch in loader:
                ...

    :obj:`batch_size` counts the clusters of one process's batch; the
    clusters of a whole step are :obj:`batch_size * world_size`.

    Args:
        data (torch_geometric.data.Data): The permuted graph (clusters are
            contiguous ranges), the same on every process.
        ptr (torch.Tensor): Cluster boundaries, the same on every process.
        batch_size (int, optional): Clusters per mini-batch of one process.
            (default: :obj:`1`)
        shuffle (bool, optional): Whether to regroup clusters every epoch.
            (default: :obj:`True`)
        seed (int, optional): The seed of the shuffling. (default: :obj:`0`)
        assignment (ClusterAssignment, optional): Who owns which cluster.
            (default: :obj:`None`, computed from :obj:`ptr`)
        rank (int, optional): This process. (default: :obj:`None`, from the
            process group)
        world_size (int, optional): The number of processes.
            (default: :obj:`None`, from the process group)
        group (torch.distributed.ProcessGroup, optional): The process group.
            (default: :obj:`None`, the default group)
        precompute (bool, optional): Whether to build every subgraph once up
            front (worth it when clusters are not regrouped, *i.e.*
            :obj:`batch_size=1`). (default: :obj:`None`, when
            :obj:`batch_size` is :obj:`1`)
        bipartite (bool, optional): Whether :obj:`adj_t` holds rows for the
            in-batch nodes only. (default: :obj:`True`)
        **kwargs (optional): Further arguments of
            :class:`torch.utils.data.DataLoader`, such as :obj:`num_workers`.
    """
    def __init__(self, data: Data, ptr: Tensor, batch_size: int = 1,
                 shuffle: bool = True, seed: int = 0,
                 assignment: Optional[ClusterAssignment] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None, group=None,
                 precompute: Optional[bool] = None, bipartite: bool = True,
                 **kwargs):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"'batch_size' (clusters per batch of one "
                             f"process) must be a positive integer (got "
                             f"{batch_size!r})")
        rank = get_rank(group) if rank is None else rank
        world_size = (get_world_size(group)
                      if world_size is None else world_size)
        self.collater = SubgraphCollater(data, ptr, bipartite)
        if assignment is None:
            assignment = ClusterAssignment(self.collater.ptr, world_size)
        elif assignment.world_size != world_size or not torch.equal(
                assignment.ptr, self.collater.ptr):
            raise ValueError("'assignment' was built for another 'ptr' or "
                             "'world_size'; build it from this loader's")
        if rank is None or not 0 <= rank < world_size:
            raise ValueError(f"'rank' must lie in [0, {world_size}) (got "
                             f"{rank})")
        _check_same_partition(self.collater.ptr, group)
        self.assignment = assignment
        self.rank = rank
        self.world_size = world_size
        self.ptr = self.collater.ptr
        self.clusters_per_batch = batch_size
        self.batch_sampler_ = DistributedClusterSampler(
            assignment, rank, batch_size, shuffle=shuffle, seed=seed)
        for key in ('batch_size', 'shuffle', 'sampler', 'batch_sampler',
                    'collate_fn'):
            kwargs.pop(key, None)
        if precompute is None:
            precompute = batch_size == 1 or not shuffle
        self.batches = None
        if precompute:
            groups = list(self.batch_sampler_)
            self.batches = [
                self.collater(g) for g in tqdm(
                    groups, desc='Precomputing subgraphs', leave=False,
                    disable=not log.isEnabledFor(logging.INFO))
            ]
            super().__init__(self.batches, batch_size=1,
                             shuffle=shuffle and batch_size == 1,
                             collate_fn=unwrap_single, **kwargs)
        else:
            super().__init__(list(range(assignment.num_clusters)),
                             batch_sampler=self.batch_sampler_,
                             collate_fn=self.collater, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        r"""Sets the epoch, which seeds the regrouping of clusters."""
        self.batch_sampler_.set_epoch(epoch)


class DistributedEvalSubgraphLoader(DistributedSubgraphLoader):
    r"""The :class:`~torch_autoscale.loader.EvalSubgraphLoader` of one
    process, for :func:`torch_autoscale.distributed.mini_inference`: the
    clusters it owns in their fixed order, in the same number of batches on
    every process, all subgraphs built once up front.

    Args:
        data (torch_geometric.data.Data): The permuted graph.
        ptr (torch.Tensor): Cluster boundaries.
        batch_size (int, optional): Clusters per mini-batch of one process.
            (default: :obj:`1`)
        **kwargs (optional): Further arguments of
            :class:`DistributedSubgraphLoader`.
    """
    def __init__(self, data: Data, ptr: Tensor, batch_size: int = 1,
                 **kwargs):
        kwargs.pop('shuffle', None)
        kwargs.pop('precompute', None)
        super().__init__(data, ptr, batch_size=batch_size, shuffle=False,
                         precompute=True, **kwargs)
