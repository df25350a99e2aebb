r"""Which process owns which cluster: the split of the work (and, for sharded
histories, of the history rows) of data-parallel GAS."""
from typing import List

import torch
from torch import Tensor


class ClusterAssignment:
    r"""Assigns the clusters of a partitioned graph to :obj:`world_size`
    processes, once: every process owns whole clusters, the same number of
    them (give or take one) and about the same number of nodes.

    Clusters go out largest first, each to the process with the fewest
    nodes among those that hold fewer than their quota of clusters
    (:math:`\lfloor K / W \rfloor`, or one more for :math:`K \bmod W` of
    them; the greedy longest-processing-time rule). The assignment depends on
    :obj:`ptr` and :obj:`world_size` only, so every process computes the
    same one. A process trains on its own clusters
    (:class:`~torch_autoscale.distributed.DistributedSubgraphLoader`) and,
    with sharded histories, stores their rows.

    Args:
        ptr (torch.Tensor): Cluster boundaries of the permuted graph:
            cluster :obj:`i` holds nodes :obj:`ptr[i]` to
            :obj:`ptr[i + 1] - 1`; an integer tensor that starts at
            :obj:`0` and does not decrease.
        world_size (int): The number of processes.

    Raises:
        ValueError: If :obj:`ptr` is not such a tensor, or holds fewer
            non-empty clusters than :obj:`world_size`.
    """
    def __init__(self, ptr: Tensor, world_size: int):
        if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2:
            raise ValueError("'ptr' must be a one-dimensional tensor of "
                             "cluster boundaries (length num_parts + 1)")
        if (ptr.is_floating_point() or ptr.is_complex()
                or ptr.dtype == torch.bool):
            raise ValueError(f"'ptr' must hold integer node offsets (got "
                             f"dtype {ptr.dtype}); pass the 'ptr' of "
                             f"'sort_by_cluster' (an int64 tensor)")
        if isinstance(world_size, bool) or not isinstance(
                world_size, int) or world_size < 1:
            raise ValueError(f"'world_size' must be a positive integer (got "
                             f"{world_size!r})")
        ptr = ptr.long().cpu()
        if int(ptr[0]) != 0:
            raise ValueError(f"'ptr' must start at 0 (got {int(ptr[0])}); "
                             f"pass the 'ptr' of 'sort_by_cluster'")
        if bool((ptr[1:] < ptr[:-1]).any()):
            i = int((ptr[1:] < ptr[:-1]).nonzero()[0])
            raise ValueError(f"'ptr' must be non-decreasing (ptr[{i + 1}] = "
                             f"{int(ptr[i + 1])} < ptr[{i}] = {int(ptr[i])}); "
                             f"pass the 'ptr' of 'sort_by_cluster'")
        sizes = ptr[1:] - ptr[:-1]
        clusters = (sizes > 0).nonzero().view(-1)
        if clusters.numel() < world_size:
            raise ValueError(
                f"the graph has {clusters.numel()} non-empty clusters but "
                f"there are {world_size} processes; partition it into at "
                f"least 'world_size' parts (more is better: several per "
                f"process)")
        self.ptr = ptr
        self.world_size = world_size
        # Largest first (ties in cluster order), each to the process with
        # the fewest nodes among those below their quota of clusters:
        # floor(K / W) each, and one more for K mod W of them.
        order = clusters[torch.sort(sizes[clusters], descending=True,
                                    stable=True).indices].tolist()
        quota, extra = divmod(len(order), world_size)
        load, count = [0] * world_size, [0] * world_size
        owner = torch.full((sizes.numel(), ), -1, dtype=torch.long)
        for c in order:
            eligible = [r for r in range(world_size) if count[r] < quota or (
                count[r] == quota and extra > 0)]
            r = min(eligible, key=lambda r: (load[r], r))
            extra -= int(count[r] == quota)
            count[r] += 1
            load[r] += int(sizes[c])
            owner[c] = r
        #: The rank owning every cluster (:obj:`-1` for empty clusters).
        self.owner: Tensor = owner
        #: The rank owning every node.
        self.node_owner: Tensor = owner.clamp(min=0).repeat_interleave(sizes)
        # A node's row in its owner's shard: owned nodes keep their global
        # order, so that a cluster stays one contiguous run.
        index = torch.empty_like(self.node_owner)
        for r in range(world_size):
            mask = self.node_owner == r
            index[mask] = torch.arange(int(mask.sum()))
        #: The row of every node in the shard of its owner.
        self.local_index: Tensor = index

    @property
    def num_nodes(self) -> int:
        return int(self.ptr[-1])

    @property
    def num_clusters(self) -> int:
        return self.ptr.numel() - 1

    def clusters(self, rank: int) -> List[int]:
        r"""The non-empty clusters owned by :obj:`rank`, in graph order."""
        self._check_rank(rank)
        return (self.owner == rank).nonzero().view(-1).tolist()

    def num_local_nodes(self, rank: int) -> int:
        r"""The number of nodes owned by :obj:`rank`."""
        self._check_rank(rank)
        return int((self.node_owner == rank).sum())

    def nodes(self, rank: int) -> Tensor:
        r"""The global ids of the nodes owned by :obj:`rank`, in order."""
        self._check_rank(rank)
        return (self.node_owner == rank).nonzero().view(-1)

    def _check_rank(self, rank: int) -> None:
        if not 0 <= rank < self.world_size:
            raise ValueError(f"'rank' must lie in [0, {self.world_size}) "
                             f"(got {rank})")

    def __repr__(self) -> str:
        nodes = [self.num_local_nodes(r) for r in range(self.world_size)]
        return (f'{self.__class__.__name__}(num_clusters='
                f'{self.num_clusters}, world_size={self.world_size}, '
                f'nodes_per_rank={nodes})')
