import pytest
import torch

from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_param_groups_cover,
    clustered_graph,
    param_ids,
)


def test_gas_equals_full_batch_and_a_wrong_model_fails():
    data, ptr = clustered_graph(200, 8, adj='gcn_norm')
    model = GCN(200, data.num_features, 16, 4, num_layers=2)
    assert_mini_inference_exact(model, data, ptr)
    assert_exact_histories(model, data, ptr)

    # Stale histories are caught (fresh ones, never filled):
    model = GCN(200, data.num_features, 16, 4, num_layers=2)
    model.mini_inference = lambda loader, progress: None
    with pytest.raises(AssertionError):
        assert_exact_histories(model, data, ptr)


def test_param_groups_cover():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    params = list(model.parameters())
    assert param_ids(params) == {id(p) for p in params}
    assert_param_groups_cover(model, [dict(params=params[:2]),
                                      dict(params=params[2:])])
    with pytest.raises(AssertionError):
        assert_param_groups_cover(model, [dict(params=params[:3])])
    with pytest.raises(AssertionError):
        assert_param_groups_cover(model, [dict(params=params),
                                          dict(params=params[:1])])
