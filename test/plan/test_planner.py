
import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.plan import (
    BudgetError,
    GraphStats,
    ModelSpec,
    format_bytes,
    plan,
)
from torch_autoscale.store import store_from_data
from torch_autoscale.utils import csr_adj_t


def test_plan_follows_the_budgets(graph, spec, tmp_path):
    roomy = plan(graph, spec, device_budget='1GB', host_budget='1GB',
                 num_parts=[6, 24])
    assert roomy.placement.tiers == ('device', 'device')
    assert roomy.placement.recompute == (False, ) * 3
    assert roomy.estimate.device_bytes <= 10**9
    assert 'Plan:' in str(roomy) and 'history 0: device' in str(roomy)
    assert roomy.budgets == dict(device=10**9, host=10**9)

    # Less device memory than the histories: they move to the host.
    tables = 2 * graph.num_nodes * 64 * 4
    tight = plan(graph, spec, device_budget=roomy.estimate.device_bytes -
                 tables // 2, host_budget='1GB', num_parts=[6, 24],
                 recompute=False)
    assert 'host' in tight.placement.tiers
    assert tight.estimate.device_bytes <= roomy.estimate.device_bytes

    # No room for a table on the device or on the host: disk, when a
    # directory is given (one configuration, so only the tiers can change).
    fixed = dict(num_parts=[6], batch_sizes=[2], recompute=False,
                 precision='float32-only')
    roomy_fixed = plan(graph, spec, device_budget='1GB', **fixed)
    no_table = (roomy_fixed.estimate.device_bytes -
                roomy_fixed.estimate.breakdown['device histories'])
    host = GraphStats.from_data(graph).graph_bytes + tables // 4
    on_disk = plan(graph, spec, device_budget=no_table, host_budget=host,
                   disk_dir=str(tmp_path), **fixed)
    assert on_disk.placement.tiers == ('disk', 'disk')
    assert on_disk.estimate.disk_bytes == tables
    assert on_disk.history_placement.directory == str(tmp_path)
    assert on_disk.history_placement.device is None
    assert on_disk.loader_kwargs() == dict(batch_size=2)


def test_plan_half_precision_only_when_needed(graph, spec):
    roomy = plan(graph, spec, device_budget='1GB', num_parts=[6])
    assert roomy.placement.dtypes == ('float32', 'float32')
    table = graph.num_nodes * 64 * 4
    need = roomy.estimate.device_bytes - table // 2
    p = plan(graph, spec, device_budget=need, host_budget=10**6,
             num_parts=[6], batch_sizes=[roomy.batch_size],
             recompute=False)
    assert 'float16' in p.placement.dtypes or 'bfloat16' in \
        p.placement.dtypes
    dtypes = p.model_kwargs()['placement'].dtypes
    assert all(isinstance(d, torch.dtype) for d in dtypes)
    assert set(dtypes) & {torch.float16, torch.bfloat16}


def test_plan_bad_arguments(graph, spec):
    with pytest.raises(ValueError, match='num_parts'):
        plan(graph, spec, num_parts=[0])
    with pytest.raises(ValueError, match='precision'):
        plan(graph, spec, num_parts=6, precision='half')
    with pytest.raises(ValueError, match="'data'"):
        plan(graph.x, spec, num_parts=6)
    with pytest.raises(ValueError, match="'data' must be a 'torch_geometric"
                       ".data.Data' object or a 'torch_autoscale.store."
                       "GraphStore' \\(got 'str'\\)"):
        plan('graph', spec, num_parts=6)
    with pytest.raises(ValueError, match="'spec'"):
        plan(graph, dict(num_layers=3), num_parts=6)
    with pytest.raises(ValueError, match='no candidate'):
        plan(graph, spec, num_parts=6, batch_sizes=[7])


def test_plan_from_a_csr_adjacency(graph, spec):
    data = Data(x=graph.x, adj_t=csr_adj_t(graph.edge_index, graph.num_nodes),
                num_nodes=graph.num_nodes)
    a = plan(data, spec, num_parts=6, batch_sizes=[2], device='cpu')
    b = plan(graph, spec, num_parts=6, batch_sizes=[2], device='cpu')
    assert a.halo == b.halo
    with pytest.raises(ValueError, match='edge_index'):
        plan(Data(x=graph.x, num_nodes=graph.num_nodes), spec, num_parts=6)


def test_plan_checks_in_channels_against_the_features(graph):
    wrong = ModelSpec(3, 50, 64, 8)
    with pytest.raises(ValueError, match=r"'spec.in_channels' \(50\) does "
                       f"not match the {graph.num_features} features of "
                       "'data.x'"):
        plan(graph, wrong, num_parts=6, device='cpu')


def test_plan_a_store_counts_a_mini_batch_in_host_memory(graph, spec,
                                                         tmp_path):
    store = store_from_data(graph, tmp_path / 'g')
    memory = GraphStats.from_data(graph)
    fixed = dict(num_parts=[24], batch_sizes=[4])
    budget = memory.graph_bytes // 2  # Less than the graph's arrays.
    assert store.nbytes > budget
    with pytest.raises(BudgetError, match="'host_budget'.*GraphStore"):
        plan(graph, spec, host_budget=budget, **fixed)

    p = plan(store, spec, host_budget=budget, **fixed)
    e = p.estimate
    assert e.host_bytes <= budget
    assert e.store_bytes == store.nbytes
    assert 'graph' not in e.breakdown
    assert e.breakdown['batch in host memory'] == e.breakdown['batch']
    assert e.host_bytes == (e.breakdown['graph in memory'] +
                            e.breakdown['batch'] +
                            e.breakdown['host histories'])
    assert (f'graph: {format_bytes(store.nbytes)} on disk (memory-mapped'
            in str(p))
    assert (f"graph resident: {format_bytes(e.breakdown['batch'])} per "
            f"mini-batch" in str(p))

    # The same partition and device memory as the graph in memory:
    in_memory = plan(graph, spec, **fixed)
    assert in_memory.estimate.store_bytes is None
    assert 'on disk' not in str(in_memory)
    assert p.halo == in_memory.halo
    assert torch.equal(p.perm, in_memory.perm)
    assert p.estimate.device_bytes == in_memory.estimate.device_bytes

    # On a CPU, the mini-batch is the step's, counted once:
    cpu = plan(store, spec, device='cpu', **fixed).estimate
    assert 'batch in host memory' not in cpu.breakdown
    assert cpu.host_bytes == (cpu.device_bytes +
                              cpu.breakdown['graph in memory'] +
                              cpu.breakdown['host histories'])


def test_plan_a_memory_mapped_data_as_its_store(graph, spec, tmp_path):
    store = store_from_data(graph, tmp_path / 'g')
    fixed = dict(num_parts=[24], batch_sizes=[4],
                 host_budget=GraphStats.from_data(graph).graph_bytes // 2)
    assert plan(store.to_data(), spec, **fixed).estimate == plan(
        store, spec, **fixed).estimate
