import math

import pytest
import torch
from torch_geometric.utils import to_undirected

from torch_autoscale.partition import (
    balance,
    edge_cut,
    part_sizes,
    partition_report,
    size_std,
)

# A path 0-1-2-3-4-5 and parts {0, 1, 2}, {3, 4}, {5}:
PATH = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
CLUSTER = torch.tensor([0, 0, 0, 1, 1, 2])


def test_report_by_hand():
    report = partition_report(PATH, CLUSTER, 3)
    assert report.num_nodes == 6 and report.num_edges == 5
    assert report.cut_edges == 2 and report.edge_cut == pytest.approx(0.4)
    assert report.sizes.tolist() == [3, 2, 1]
    # Edges per part, counting both ends: 2+2, 1+1+1+... = [5, 4, 1]:
    assert report.balance == pytest.approx(5 / (10 / 3))
    assert report.size_std == pytest.approx(1.0)  # sqrt((1+0+1)/2)
    assert report.size_ratio == pytest.approx(1.5)
    assert report.num_empty == 0
    assert 'edge cut 0.4000' in str(report)
    assert report.as_dict()['max_size'] == 3


def test_same_for_both_directions():
    one = partition_report(PATH, CLUSTER)
    both = partition_report(to_undirected(PATH), CLUSTER)
    assert both.num_edges == one.num_edges == 5
    assert both.cut_edges == one.cut_edges
    assert both.edge_cut == pytest.approx(one.edge_cut)
    assert both.balance == pytest.approx(one.balance)


def test_functions_and_weights():
    assert edge_cut(PATH, CLUSTER) == pytest.approx(0.4)
    weight = torch.tensor([1.0, 1.0, 3.0, 1.0, 4.0])
    assert edge_cut(PATH, CLUSTER, weight) == pytest.approx(7 / 10)
    assert balance(PATH, torch.zeros(6, dtype=torch.long)) == 1.0
    assert size_std(CLUSTER) == pytest.approx(1.0)
    assert size_std(torch.tensor([0, 1, 0, 1])) == 0.0
    assert part_sizes(CLUSTER, 5).tolist() == [3, 2, 1, 0, 0]
    report = partition_report(PATH, CLUSTER, 5)
    assert report.num_empty == 2
    # STD around |V| / K with K - 1 degrees of freedom:
    mean = 6 / 5
    expected = math.sqrt(sum((s - mean)**2 for s in [3, 2, 1, 0, 0]) / 4)
    assert report.size_std == pytest.approx(expected)


def test_self_loops_ignored():
    loops = torch.cat([PATH, torch.tensor([[0, 5], [0, 5]])], dim=1)
    assert edge_cut(loops, CLUSTER) == pytest.approx(0.4)


@pytest.mark.parametrize('cluster,num_parts,match', [
    (torch.tensor([0, 0, 1]), None, 'num_nodes|node index'),
    (torch.tensor([0.0, 0, 0, 1, 1, 2]), None, 'integer'),
    (torch.tensor([0, 0, 0, 1, 1, -1]), None, 'non-negative'),
    (CLUSTER, 2, 'num_parts'),
])
def test_bad_input(cluster, num_parts, match):
    with pytest.raises(ValueError, match=match):
        partition_report(PATH, cluster, num_parts)


def ring(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])


@pytest.mark.parametrize('cluster,num_parts,match', [
    (torch.tensor([0, 5, 1]), 2, "part id 5, which does not fit "
     "'num_parts=2'"),
    (torch.tensor([0, -1, 1]), None, 'non-negative part ids'),
    (torch.tensor([0, -1, 1]), 2, 'non-negative part ids'),
    (torch.tensor([0.0, 1.0, 1.0]), None, 'integer part ids'),
    (torch.tensor([0, 1, 1]), 0, "'num_parts' must be at least 1"),
    (torch.tensor([0, 1, 1]), 1.5, "'num_parts' must be an integer"),
])
def test_every_metric_rejects_the_same_ids(cluster, num_parts, match):
    # part_sizes and size_std used to count ids beyond 'num_parts' (or fail
    # in torch.bincount on negative ones) where the others raised:
    calls = [
        lambda: part_sizes(cluster, num_parts),
        lambda: size_std(cluster, num_parts),
        lambda: balance(ring(3), cluster, num_parts),
        lambda: partition_report(ring(3), cluster, num_parts),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call()


def test_a_short_cluster_is_named():
    # The metrics take no 'num_nodes': the fault is a short 'cluster'.
    cluster = torch.tensor([0, 1, 0])
    for call in (lambda: edge_cut(ring(10), cluster),
                 lambda: partition_report(ring(10), cluster),
                 lambda: balance(ring(10), cluster)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "'cluster' has 3 entries but 'edge_index' holds node index " \
            "9" in message and 'num_nodes' not in message
    adj = torch.sparse_coo_tensor(ring(10), torch.ones(10), (10, 10))
    with pytest.raises(ValueError, match="'cluster' has 3 entries but the "
                       "sparse 'edge_index' is a 10 x 10"):
        partition_report(adj, cluster)
    with pytest.raises(ValueError, match="'cluster' has 12 entries"):
        partition_report(adj, torch.zeros(12, dtype=torch.long))
    # Isolated nodes past the last edge are fine:
    assert partition_report(ring(3), torch.tensor([0, 0, 0, 1])).sizes \
        .tolist() == [3, 1]


def test_empty_graph():
    empty = torch.empty(2, 0, dtype=torch.long)
    for call in (balance, edge_cut, partition_report):
        with pytest.raises(ValueError, match="'cluster' is empty.*graph "
                           "without nodes"):
            call(empty, torch.empty(0, dtype=torch.long))
    # An edgeless graph with nodes is measured:
    assert balance(empty, torch.tensor([0, 1, 1])) == 1.0
    assert part_sizes(torch.empty(0, dtype=torch.long), 2).tolist() == [0, 0]
