import pytest
import torch

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.plan import (
    BudgetError,
    GraphStats,
    ModelSpec,
    Placement,
    estimate,
    format_bytes,
    halo_stats,
    parse_bytes,
    plan,
)
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


@pytest.fixture(scope='module')
def graph():
    return homophilous_sbm(3000, seed=0)


@pytest.fixture(scope='module')
def spec(graph):
    return ModelSpec(3, graph.num_features, 64, int(graph.y.max()) + 1)


def test_parse_and_format_bytes():
    assert parse_bytes('8GB') == 8 * 10**9
    assert parse_bytes('512 MiB') == 512 * 2**20
    assert parse_bytes('1.5k') == 1500
    assert parse_bytes(123) == 123
    assert format_bytes(1536) == '1.50 KiB'
    for bad in ('8 parsecs', -1, True):
        with pytest.raises(ValueError, match='budget'):
            parse_bytes(bad)


def test_halo_stats_match_the_loader(graph):
    cluster = metis(graph.edge_index, graph.num_nodes, 12)
    perm, ptr = sort_by_cluster(cluster, 12)
    data = permute(graph, perm)
    data.adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    for batch_size in (1, 3, 12):
        stats = halo_stats(data.edge_index, ptr, batch_size)
        batches = list(SubgraphLoader(data, ptr, batch_size=batch_size))
        halos = [b.n_id.numel() - b.batch_size for b in batches]
        assert stats.num_batches == len(batches)
        assert stats.max_halo == max(halos)
        assert stats.max_nodes == max(b.batch_size for b in batches)
        assert stats.max_rows == max(b.n_id.numel() for b in batches)
        assert stats.mean_halo == pytest.approx(sum(halos) / len(halos))
    assert halo_stats(data.edge_index, ptr, 12).max_halo == 0


def test_estimate_terms(graph, spec):
    stats = GraphStats.from_data(graph)
    assert stats.num_edges == graph.edge_index.size(1)
    cluster = metis(graph.edge_index, graph.num_nodes, 8)
    perm, ptr = sort_by_cluster(cluster, 8)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    halo = halo_stats(inv[graph.edge_index], ptr, 2)

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
    bigger = estimate(stats, spec, halo_stats(inv[graph.edge_index], ptr, 8))
    assert bigger.device_bytes > host.device_bytes
    # On a CPU, one memory holds everything:
    cpu = estimate(stats, spec, halo, device='cpu')
    assert cpu.host_bytes == host.host_bytes + host.device_bytes
    with pytest.raises(ValueError, match='one tier'):
        estimate(stats, spec, halo, Placement(('host', ), ('float32', ),
                                              (False, ) * 3))
    with pytest.raises(ValueError, match='unknown tier'):
        estimate(stats, spec, halo,
                 Placement(('ssd', 'host'), ('float32', 'float32'),
                           (False, ) * 3))


def test_plan_follows_the_budgets(graph, spec, tmp_path):
    roomy = plan(graph, spec, device_budget='1GB', host_budget='1GB',
                 num_parts=[6, 24])
    assert roomy.placement.tiers == ('device', 'device')
    assert roomy.placement.recompute == (False, ) * 3
    assert roomy.estimate.device_bytes <= 10**9
    assert 'Plan:' in str(roomy) and 'history 0: device' in str(roomy)

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
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget=no_table, host_budget=host, **fixed)
    assert 'disk_dir' in str(info.value)
    on_disk = plan(graph, spec, device_budget=no_table, host_budget=host,
                   disk_dir=str(tmp_path), **fixed)
    assert on_disk.placement.tiers == ('disk', 'disk')
    assert on_disk.estimate.disk_bytes == tables
    assert on_disk.model_kwargs()['history_dir'] == str(tmp_path)
    assert on_disk.loader_kwargs() == dict(batch_size=2)


def test_plan_error_names_a_budget_that_works(graph, spec):
    with pytest.raises(BudgetError, match='at least') as info:
        plan(graph, spec, device_budget=1000, host_budget='1GB',
             num_parts=[6, 24])
    smallest = info.value.min_device_bytes
    assert smallest > 1000
    p = plan(graph, spec, device_budget=smallest, host_budget='1GB',
             num_parts=[6, 24])
    assert p.estimate.device_bytes <= smallest
    with pytest.raises(BudgetError):
        plan(graph, spec, device_budget=smallest - 1, host_budget='1GB',
             num_parts=[6, 24])


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
    kwargs = p.model_kwargs()
    assert all(isinstance(d, torch.dtype) for d in kwargs['history_dtype'])


def test_plan_apply_and_bad_arguments(graph, spec, tmp_path):
    p = plan(graph, spec, num_parts=6, device='cpu')
    data, ptr = p.apply(graph)
    assert ptr.numel() == 7 and data.num_nodes == graph.num_nodes

    # A model and a loader built from a plan with every fate train:
    from torch_autoscale.nn.models import GCN
    p.placement = Placement(('disk', 'host'), ('float16', 'float32'),
                            (True, False, False))
    p.disk_dir = str(tmp_path)
    data.adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    model = GCN(data.num_nodes, spec.in_channels, 64, spec.out_channels, 3,
                **p.model_kwargs())
    assert [h.storage for h in model.histories] == ['disk', 'host']
    assert model.histories[0].dtype == torch.float16
    assert model.recompute == [True, False, False]
    loader = SubgraphLoader(data, ptr, **p.loader_kwargs())
    for batch in loader:
        out = model(batch.data.x, batch.data.adj_t, batch)
        out.sum().backward()
    # The same through 'plan=':
    model = GCN(data.num_nodes, spec.in_channels, 64, spec.out_channels, 3,
                plan=p)
    assert [h.storage for h in model.histories] == ['disk', 'host']
    assert model.recompute == [True, False, False]
    loader = SubgraphLoader(data, ptr, plan=p)
    assert loader.batch_size == p.batch_size
    with pytest.raises(ValueError, match="either 'plan' or"):
        GCN(data.num_nodes, spec.in_channels, 64, spec.out_channels, 3,
            plan=p, history_storage='host')
    with pytest.raises(ValueError, match="differs from the plan"):
        SubgraphLoader(data, ptr, plan=p, batch_size=p.batch_size + 1)
    with pytest.raises(ValueError, match="plan.apply"):
        SubgraphLoader(data, ptr[:-1], plan=p)
    with pytest.raises(ValueError, match='num_parts'):
        plan(graph, spec, num_parts=[0])
    with pytest.raises(ValueError, match='precision'):
        plan(graph, spec, num_parts=6, precision='half')
    with pytest.raises(ValueError, match='num_layers'):
        ModelSpec(0, 3, 4, 5)


def test_plan_from_a_csr_adjacency(graph, spec):
    from torch_geometric.data import Data
    data = Data(x=graph.x, adj_t=csr_adj_t(graph.edge_index, graph.num_nodes),
                num_nodes=graph.num_nodes)
    a = plan(data, spec, num_parts=6, batch_sizes=[2], device='cpu')
    b = plan(graph, spec, num_parts=6, batch_sizes=[2], device='cpu')
    assert a.halo == b.halo
    with pytest.raises(ValueError, match='edge_index'):
        plan(Data(x=graph.x, num_nodes=graph.num_nodes), spec, num_parts=6)


def ring(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])


def test_parse_bytes_rejects_non_finite_and_malformed():
    for bad in (float('nan'), float('inf'), '1.2.3', '.', 'GB', None):
        with pytest.raises(ValueError, match="'device_budget'"):
            parse_bytes(bad, 'device_budget')
    assert parse_bytes('.5G') == 5 * 10**8
    assert parse_bytes(10**400) == 10**400  # No float conversion of ints.


def test_halo_stats_checks_ptr_against_the_graph():
    t = torch.tensor
    # 'ptr' past the graph used to count 10 nodes that do not exist:
    with pytest.raises(ValueError, match="'ptr' ends at 20 but 'edge_index' "
                       "spans 10 nodes"):
        halo_stats(ring(10), t([0, 5, 20]), 1)
    with pytest.raises(ValueError, match="'ptr' ends at 20 but the graph "
                       "has 10 nodes"):
        halo_stats(ring(10), t([0, 5, 20]), 1, num_nodes=10)
    with pytest.raises(ValueError, match="'ptr' ends at 8"):
        halo_stats(ring(10), t([0, 5, 8]), 1)
    with pytest.raises(ValueError, match="'edge_index' holds node index 9"):
        halo_stats(ring(10), t([0, 5, 8]), 1, num_nodes=8)
    # Isolated nodes past the last edge, when 'num_nodes' says so:
    assert halo_stats(ring(10), t([0, 5, 20]), 1, num_nodes=20).max_nodes \
        == 15
    for ptr, match in ((t([0., 5., 10.]), 'integer'), (t([1, 5, 10]),
                                                       'start at 0'),
                       (t([0, 6, 5, 10]), 'non-decreasing'),
                       (t([10]), 'length num_parts')):
        with pytest.raises(ValueError, match=f"'ptr'.*{match}"):
            halo_stats(ring(10), ptr, 1)
    for batch_size in (0, 1.5):
        with pytest.raises(ValueError, match="'batch_size'"):
            halo_stats(ring(10), t([0, 5, 10]), batch_size)
    with pytest.raises(ValueError, match="'edge_index'"):
        halo_stats(ring(10).float(), t([0, 5, 10]), 1)


def test_plan_checks_in_channels_against_the_features(graph):
    wrong = ModelSpec(3, 50, 64, 8)
    with pytest.raises(ValueError, match=r"'spec.in_channels' \(50\) does "
                       f"not match the {graph.num_features} features of "
                       "'data.x'"):
        plan(graph, wrong, num_parts=6, device='cpu')


@pytest.mark.parametrize('device', ['cpu', 'cuda'])
def test_budget_error_names_the_budget_that_failed(graph, spec, device):
    kwargs = dict(num_parts=[6], device=device)
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget='1KB', host_budget='10GB', **kwargs)
    message = str(info.value)
    assert "'device_budget' (1000 B) is below" in message
    assert "'host_budget'" not in message
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget='10GB', host_budget='1KB', **kwargs)
    message = str(info.value)
    assert "'host_budget' (1000 B) is below" in message
    assert "'device_budget'" not in message
    with pytest.raises(BudgetError, match="'device_budget'.* and "
                       "'host_budget'.*raise both"):
        plan(graph, spec, device_budget='1KB', host_budget='1KB', **kwargs)


def test_budget_error_minimum_follows_precision_and_recompute(graph, spec):
    # Without half precision and recomputation, the smallest budget is the
    # one that fits float32 histories and kept activations:
    fixed = dict(num_parts=[6], batch_sizes=[2], precision='float32-only',
                 recompute=False, host_budget='1GB')
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget=1000, **fixed)
    smallest = info.value.min_device_bytes
    assert 'precision=' in str(info.value) and 'recompute=True' in str(
        info.value)
    p = plan(graph, spec, device_budget=smallest, **fixed)
    assert p.placement.dtypes == ('float32', 'float32')
    with pytest.raises(BudgetError):
        plan(graph, spec, device_budget=smallest - 1, **fixed)


def test_budget_error_when_only_both_together_fail(graph, spec):
    # Each minimum puts the histories in the other memory; both at once
    # leave them nowhere:
    fixed = dict(num_parts=[6], batch_sizes=[2])
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget=1, host_budget=1, **fixed)
    device, host = info.value.min_device_bytes, info.value.min_host_bytes
    plan(graph, spec, device_budget=device, **fixed)
    plan(graph, spec, host_budget=host, **fixed)
    with pytest.raises(BudgetError, match='together.*raise either budget'):
        plan(graph, spec, device_budget=device, host_budget=host, **fixed)
