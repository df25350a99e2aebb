from dataclasses import replace

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.history import HistoryPlacement
from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.plan import Placement, plan
from torch_autoscale.store import store_from_data
from torch_autoscale.utils import csr_adj_t


@pytest.fixture(scope='module')
def cpu_plan(graph, spec):
    return plan(graph, spec, num_parts=6, device='cpu')


def test_plan_apply(graph, cpu_plan):
    data, ptr = cpu_plan.apply(graph)
    assert ptr.numel() == 7 and data.num_nodes == graph.num_nodes
    assert torch.equal(data.x, graph.x[cpu_plan.perm])
    assert 'Plan: 6 parts' in str(cpu_plan)
    assert 'recompute layers: none' in str(cpu_plan)


def test_plan_apply_points_a_store_to_permute_store(graph, cpu_plan,
                                                    tmp_path):
    store = store_from_data(graph, tmp_path / 'g')
    with pytest.raises(ValueError, match=r'permute_store\(store, plan.perm'):
        cpu_plan.apply(store)


def test_model_and_loader_kwargs(graph, spec, cpu_plan):
    p = cpu_plan
    assert p.loader_kwargs() == dict(batch_size=p.batch_size)
    kwargs = p.model_kwargs()
    assert set(kwargs) == {'placement', 'recompute'}
    assert kwargs['placement'] == p.history_placement == HistoryPlacement(
        ('host', 'host'), (torch.float32, torch.float32))
    assert kwargs['recompute'] == [False] * 3

    # The device only with a device tier, the folder only with a disk tier:
    p = plan(graph, spec, num_parts=6, device_budget='1GB')
    assert p.placement.tiers == ('device', 'device')
    assert p.history_placement.device == torch.device('cuda')
    assert p.history_placement.directory is None


def test_a_model_and_a_loader_built_from_a_plan_train(graph, spec, cpu_plan,
                                                      tmp_path):
    from torch_autoscale.nn.models import GCN
    data, ptr = cpu_plan.apply(graph)
    data.adj_t, _ = gcn_norm(csr_adj_t(data.edge_index, data.num_nodes))
    # Every fate: disk and host tiers, half precision, a recomputed layer.
    p = replace(cpu_plan, disk_dir=str(tmp_path),
                placement=Placement(('disk', 'host'), ('float16', 'float32'),
                                    (True, False, False)))
    placement = p.history_placement
    assert placement.storages == ('disk', 'host')
    assert placement.dtypes == (torch.float16, torch.float32)
    assert placement.device is None and placement.directory == str(tmp_path)
    model = GCN(data.num_nodes, spec.in_channels, 64, spec.out_channels, 3,
                **p.model_kwargs())
    assert model.histories.placement == placement
    assert [h.storage for h in model.histories] == ['disk', 'host']
    assert model.histories[0].dtype == torch.float16
    assert model.recompute == [True, False, False]
    loader = SubgraphLoader(data, ptr, shuffle=True, **p.loader_kwargs())
    assert loader.batch_size == p.batch_size
    for batch in loader:
        out = model(batch.data.x, batch.data.adj_t, batch)
        out.sum().backward()
    assert all(torch.isfinite(h.emb.float()).all() for h in model.histories)
