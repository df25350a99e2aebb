r"""What the planner returns: a :class:`Plan`, which lays the graph out
(:meth:`Plan.apply`) and gives the arguments of the model
(:meth:`Plan.model_kwargs`, a
:class:`~torch_autoscale.history.HistoryPlacement` and the layers to
recompute) and of the loader (:meth:`Plan.loader_kwargs`)."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale.history import HistoryPlacement
from torch_autoscale.partition import permute
from torch_autoscale.store.format import GraphStore

from .estimator import Estimate
from .placement import Placement
from .sizes import format_budget, format_bytes
from .stats import HaloStats


@dataclass
class Plan:
    r"""A configuration found by :func:`~torch_autoscale.plan.plan`.

    .. code-block:: python

        data, ptr = p.apply(data)
        model = GCN(data.num_nodes, 128, 256, 40, 3, **p.model_kwargs())
        loader = SubgraphLoader(data, ptr, shuffle=True,
                                **p.loader_kwargs())

    Attributes:
        num_parts (int): The number of clusters.
        batch_size (int): Clusters per mini-batch.
        placement (Placement): The tier and dtype of every history, and the
            layers to recompute.
        estimate (Estimate): Its predicted memory and traffic.
        halo (HaloStats): Its mini-batch sizes.
        perm (torch.Tensor): The node permutation of the partition (see
            :func:`~torch_autoscale.partition.permute`).
        ptr (torch.Tensor): The cluster boundaries after permuting.
        disk_dir (str, optional): The directory of disk-tier histories.
        budgets (dict): The budgets it was planned for, in bytes.
        device (str, optional): The compute device it was planned for, where
            device-tier histories live.
    """
    num_parts: int
    batch_size: int
    placement: Placement
    estimate: Estimate
    halo: HaloStats
    perm: Tensor
    ptr: Tensor
    disk_dir: Optional[str] = None
    budgets: Dict[str, Optional[int]] = field(default_factory=dict)
    device: Optional[str] = None

    @property
    def history_placement(self) -> HistoryPlacement:
        r"""Where the model's history tables live: the tier and dtype of
        every history, the plan's :obj:`device` when a history is on the
        device and its :obj:`disk_dir` when one is on disk."""
        return self.placement.history_placement(self.device, self.disk_dir)

    def model_kwargs(self) -> Dict[str, Any]:
        r"""Keyword arguments of :class:`~torch_autoscale.nn.ScalableGNN`
        (and every bundled model) that realize the plan:
        :obj:`placement` (:attr:`history_placement`) and
        :obj:`recompute` (one flag per layer)."""
        return dict(placement=self.history_placement,
                    recompute=list(self.placement.recompute))

    def loader_kwargs(self) -> Dict[str, Any]:
        r"""Keyword arguments of
        :class:`~torch_autoscale.loader.SubgraphLoader`: the
        :obj:`batch_size`. Pass it the graph and :obj:`ptr` of
        :meth:`apply`."""
        return dict(batch_size=self.batch_size)

    def apply(self, data: Data) -> Tuple[Data, Tensor]:
        r"""The graph permuted by the plan's partition, and the cluster
        boundaries, ready for
        :class:`~torch_autoscale.loader.SubgraphLoader`.

        Args:
            data (torch_geometric.data.Data): The graph the plan was
                made for.

        Raises:
            ValueError: If :obj:`data` is a
                :class:`~torch_autoscale.store.GraphStore`, which this would
                read into memory: write it in the plan's order with
                :func:`~torch_autoscale.store.permute_store` instead.
        """
        if isinstance(data, GraphStore):
            raise ValueError(
                "Plan.apply() permutes a graph in memory; lay out a "
                "GraphStore on disk with torch_autoscale.store."
                "permute_store(store, plan.perm, path), and pass its "
                "to_data() and 'plan.ptr' to the loader")
        return permute(data, self.perm), self.ptr

    def __str__(self) -> str:
        e = self.estimate
        lines = [
            f'Plan: {self.num_parts} parts, {self.batch_size} per batch '
            f'({self.halo.num_batches} batches; largest {self.halo.max_nodes}'
            f' nodes + {self.halo.max_halo} halo)',
            f'  device {format_bytes(e.device_bytes)} of '
            f"{format_budget(self.budgets.get('device'))}, host "
            f'{format_bytes(e.host_bytes)} of '
            f"{format_budget(self.budgets.get('host'))}, disk "
            f'{format_bytes(e.disk_bytes)}; history traffic '
            f'{format_bytes(e.transfer_bytes)} per epoch',
        ]
        if e.store_bytes is not None:  # What is in the page cache apart.
            held = e.breakdown.get('graph in memory', 0)
            lines += [
                f'  graph: {format_bytes(e.store_bytes)} on disk '
                f'(memory-mapped; the page cache is not counted)',
                f'  graph resident: {format_bytes(e.breakdown["batch"])} '
                f'per mini-batch' +
                (f' + {format_bytes(held)} held throughout' if held else '')
            ]
        for i, fate in enumerate(self.placement.history_fates):
            lines.append(f'  history {i}: {fate.tier}, {fate.dtype}')
        recompute = [i for i, r in enumerate(self.placement.recompute) if r]
        lines.append('  recompute layers: ' +
                     (', '.join(map(str, recompute)) if recompute else
                      'none'))
        lines.append('  ' + ', '.join(f'{k} {format_bytes(v)}'
                                      for k, v in e.breakdown.items()))
        return '\n'.join(lines)
