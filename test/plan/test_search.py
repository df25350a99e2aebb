import itertools
import math

import pytest
import torch

from torch_autoscale.partition import metis, sort_by_cluster
from torch_autoscale.plan import (
    GraphStats,
    Hardware,
    HistoryFate,
    LayerFate,
    halo_stats,
)
from torch_autoscale.plan.search import (
    Option,
    State,
    pareto,
    search,
    search_space,
)

HOST = HistoryFate('host', 'float32')
DEVICE = HistoryFate('device', 'float32')
KEEP, RECOMPUTE = LayerFate(False), LayerFate(True)


def test_fates_are_typed_values():
    assert HistoryFate('host', 'float32') == HOST
    assert len({HOST, HistoryFate('host', 'float32'), DEVICE}) == 2
    with pytest.raises(AttributeError):
        HOST.tier = 'disk'  # Frozen.


def test_pareto_drops_dominated_states():
    a = State(1.0, 1.0, 1.0, (HOST, ))
    b = State(2.0, 2.0, 2.0, (DEVICE, ))  # Worse in everything.
    c = State(0.0, 3.0, 3.0, (KEEP, ))  # Less device memory.
    assert pareto([b, c, a]) == [a, c]


def brute_force(options, device_left, host_left):
    best = None
    for combo in itertools.product(*options):
        d = sum(o.device for o in combo)
        h = sum(o.host for o in combo)
        t = sum(o.cost for o in combo)
        if d <= device_left and h <= host_left and (best is None
                                                    or t < best[0]):
            best = (t, tuple(o.fate for o in combo))
    return best


def test_search_matches_brute_force():
    history = [Option(4, 0, 0.0, DEVICE), Option(0, 4, 1.0, HOST),
               Option(0, 0, 5.0, HistoryFate('disk', 'float32')),
               Option(2, 0, 0.5, HistoryFate('device', 'float16'))]
    layer = [Option(3, 0, 0.0, KEEP), Option(1, 0, 2.0, RECOMPUTE)]
    options = [history, history, layer, layer]
    for device_left, host_left in itertools.product(range(0, 16, 3),
                                                    (0, 4, 8, math.inf)):
        found = search(options, device_left, host_left)
        expected = brute_force(options, device_left, host_left)
        if expected is None:
            assert found is None
            continue
        assert found.cost == expected[0]
        assert found.device <= device_left and found.host <= host_left
        assert all(isinstance(f, HistoryFate) for f in found.fates[:2])
        assert all(isinstance(f, LayerFate) for f in found.fates[2:])
    assert search(options).fates == (DEVICE, DEVICE, KEEP, KEEP)


def test_search_space(graph, spec):
    cluster = metis(graph.edge_index, graph.num_nodes, 6)
    perm, ptr = sort_by_cluster(cluster, 6)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    halo = halo_stats(inv[graph.edge_index], ptr, 2)
    stats = GraphStats.from_data(graph)
    space = search_space(stats, spec, halo, Hardware(), cpu=False,
                         dtypes=('float32', ), disk=False, recompute=True)
    assert len(space.options) == spec.num_histories + spec.num_layers
    assert {o.fate for o in space.options[0]} == {DEVICE, HOST}
    assert {o.fate for o in space.options[-1]} == {KEEP, RECOMPUTE}
    # On a CPU: no device tier, and everything counts in one budget.
    cpu = search_space(stats, spec, halo, Hardware(), cpu=True,
                       dtypes=('float32', 'float16'), disk=True,
                       recompute=False)
    fates = {o.fate for o in cpu.options[0]}
    assert {f.tier for f in fates} == {'host', 'disk'}
    assert {f.dtype for f in fates} == {'float32', 'float16'}
    assert all(o.host == 0 for entry in cpu.options for o in entry)
    assert [o.fate for o in cpu.options[-1]] == [KEEP]
