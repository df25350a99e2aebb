from dataclasses import replace

import pytest
import torch

from torch_autoscale.partition import metis, sort_by_cluster
from torch_autoscale.plan import (
    GraphStats,
    HistoryFate,
    Placement,
    estimate,
    halo_stats,
)
from torch_autoscale.plan.estimator import Hardware, terms


@pytest.fixture(scope='module')
def partitioned(graph):
    cluster = metis(graph.edge_index, graph.num_nodes, 8)
    perm, ptr = sort_by_cluster(cluster, 8)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return inv[graph.edge_index], ptr


def test_estimate_terms(graph, spec, partitioned):
    edge_index, ptr = partitioned
    stats = GraphStats.from_data(graph)
    halo = halo_stats(edge_index, ptr, 2)

    host = estimate(stats, spec, halo)
    device = estimate(stats, spec, halo,
                      Placement(('device', 'host'), ('float32', 'float32'),
                                (False, ) * 3))
    table = graph.num_nodes * 64 * 4
    assert device.device_bytes - host.device_bytes == table
    assert host.host_bytes - device.host_bytes == table
    half = estimate(stats, spec, halo,
                    Placement(('host', 'host'), ('float16', 'bfloat16'),
                              (False, ) * 3))
    assert host.host_bytes - half.host_bytes == table  # Half of two tables.
    assert half.transfer_bytes * 2 == host.transfer_bytes
    disk = estimate(stats, spec, halo,
                    Placement(('disk', 'disk'), ('float32', 'float32'),
                              (False, ) * 3))
    assert disk.disk_bytes == 2 * table and disk.cost > host.cost
    recompute = estimate(stats, spec, halo,
                         Placement(('host', 'host'), ('float32', 'float32'),
                                   (True, ) * 3))
    assert recompute.device_bytes < host.device_bytes
    assert recompute.cost > host.cost
    # Larger batches need more device memory:
    bigger = estimate(stats, spec, halo_stats(edge_index, ptr, 8))
    assert bigger.device_bytes > host.device_bytes
    # On a CPU, one memory holds everything:
    cpu = estimate(stats, spec, halo, device='cpu')
    assert cpu.host_bytes == host.host_bytes + host.device_bytes
    assert 'device histories' in str(host)
    with pytest.raises(ValueError, match='one tier'):
        estimate(stats, spec, halo, Placement(('host', ), ('float32', ),
                                              (False, ) * 3))
    with pytest.raises(ValueError, match='unknown tier'):
        estimate(stats, spec, halo,
                 Placement(('ssd', 'host'), ('float32', 'float32'),
                           (False, ) * 3))


def test_terms_cost_every_fate(graph, spec, partitioned):
    edge_index, ptr = partitioned
    stats = GraphStats.from_data(graph)
    halo = halo_stats(edge_index, ptr, 2)
    t = terms(stats, spec, halo, Hardware(), cpu=False)
    assert len(t.histories) == spec.num_histories
    assert len(t.act) == len(t.act_recompute) == spec.num_layers
    options = t.histories[0]
    assert len(options) == 9  # Three tiers times three dtypes.
    device = options[HistoryFate('device', 'float32')]
    host = options[HistoryFate('host', 'float32')]
    disk = options[HistoryFate('disk', 'float32')]
    half = options[HistoryFate('host', 'float16')]
    assert device.table == host.table == 2 * half.table
    assert device.cost == 0 < host.cost < disk.cost
    # On a CPU, host histories move nothing across a bus:
    cpu = terms(stats, spec, halo, Hardware(), cpu=True)
    assert cpu.histories[0][HistoryFate('host', 'float32')].cost == 0


def test_estimate_of_a_graph_on_disk(graph, spec, partitioned):
    edge_index, ptr = partitioned
    halo = halo_stats(edge_index, ptr, 2)
    memory = GraphStats.from_data(graph)
    disk = replace(memory, store_bytes=10**9, resident_bytes=1000)
    a, b = estimate(memory, spec, halo), estimate(disk, spec, halo)
    assert b.device_bytes == a.device_bytes
    assert b.host_bytes == (a.host_bytes - memory.graph_bytes + 1000 +
                            a.breakdown['batch'])
    assert a.store_bytes is None and b.store_bytes == 10**9
    assert 'on disk' in str(b) and 'on disk' not in str(a)
    # On a CPU, the batch is one of the step's tensors, counted once:
    cpu = estimate(disk, spec, halo, device='cpu')
    assert cpu.host_bytes == b.host_bytes - a.breakdown['batch'] + \
        cpu.device_bytes
