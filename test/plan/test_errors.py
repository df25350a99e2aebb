import pytest

from torch_autoscale.plan import BudgetError, GraphStats, plan


def test_plan_error_names_a_budget_that_works(graph, spec):
    with pytest.raises(BudgetError, match='at least') as info:
        plan(graph, spec, device_budget=1000, host_budget='1GB',
             num_parts=[6, 24])
    assert isinstance(info.value, ValueError)
    smallest = info.value.min_device_bytes
    assert smallest > 1000
    p = plan(graph, spec, device_budget=smallest, host_budget='1GB',
             num_parts=[6, 24])
    assert p.estimate.device_bytes <= smallest
    with pytest.raises(BudgetError):
        plan(graph, spec, device_budget=smallest - 1, host_budget='1GB',
             num_parts=[6, 24])


def test_budget_error_suggests_the_disk(graph, spec):
    fixed = dict(num_parts=[6], batch_sizes=[2], recompute=False,
                 precision='float32-only')
    roomy = plan(graph, spec, device_budget='1GB', **fixed)
    no_table = (roomy.estimate.device_bytes -
                roomy.estimate.breakdown['device histories'])
    tables = 2 * graph.num_nodes * 64 * 4
    host = GraphStats.from_data(graph).graph_bytes + tables // 4
    with pytest.raises(BudgetError) as info:
        plan(graph, spec, device_budget=no_table, host_budget=host, **fixed)
    assert "pass 'disk_dir'" in str(info.value)


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
