import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.plan import GraphStats, ModelSpec, plan
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
