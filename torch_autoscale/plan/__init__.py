r"""Where every tensor of GAS training lives: a memory estimator and a
planner.

Every datum of training with histories has one of four fates (as the
FlexGNN paper, KDD 2025, calls them): kept on the compute
device, offloaded to host memory, offloaded to disk, or recomputed.
:func:`estimate` predicts the memory and the traffic of one configuration
(number of parts, clusters per batch, a tier and dtype per history, the
layers whose activations are recomputed); :func:`plan` searches the
configurations for the fastest one that fits the given budgets, with a
dynamic program over the fates. The model's histories are built from the
plan's :class:`~torch_autoscale.history.HistoryPlacement`.

.. code-block:: python

    from torch_autoscale.plan import ModelSpec, plan

    spec = ModelSpec(num_layers=3, in_channels=128, hidden_channels=256,
                     out_channels=40)
    p = plan(data, spec, device_budget='8GB', host_budget='64GB',
             disk_dir='/scratch')
    print(p)  # A readable report.
    data, ptr = p.apply(data)
    model = GCN(data.num_nodes, 128, 256, 40, 3, **p.model_kwargs())
    loader = SubgraphLoader(data, ptr, shuffle=True, **p.loader_kwargs())
"""
from torch_autoscale.history import STORAGES

from .errors import BudgetError
from .estimator import Estimate, Hardware, estimate
from .placement import HistoryFate, LayerFate, Placement
from .planner import plan
from .result import Plan
from .sizes import format_bytes, parse_bytes
from .stats import GraphStats, HaloStats, ModelSpec, halo_stats

TIERS = STORAGES
r"""Where a history can live: :obj:`torch_autoscale.history.STORAGES`."""

__all__ = [
    'plan',
    'Plan',
    'BudgetError',
    'estimate',
    'Estimate',
    'GraphStats',
    'ModelSpec',
    'HaloStats',
    'halo_stats',
    'Placement',
    'HistoryFate',
    'LayerFate',
    'Hardware',
    'parse_bytes',
    'format_bytes',
    'TIERS',
]
