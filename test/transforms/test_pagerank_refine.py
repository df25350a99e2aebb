import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, is_undirected, to_undirected

from torch_autoscale.transforms import (
    PageRankRefine,
    pagerank_refine,
    subgraph_pagerank,
)

from test.partition.test_lpmetis import planted


def dense_pagerank(edge_index, nodes, alpha=0.85):
    r"""PageRank of the subgraph induced by :obj:`nodes`, by solving the
    linear system of the Markov chain (no power iteration)."""
    n = nodes.numel()
    local = {int(v): i for i, v in enumerate(nodes)}
    P = torch.zeros(n, n, dtype=torch.double)
    for s, d in edge_index.t().tolist():
        if s in local and d in local:
            P[local[s], local[d]] += 1
    out = P.sum(1, keepdim=True)
    P = torch.where(out > 0, P / out.clamp(min=1), torch.full_like(P, 1 / n))
    # pr = alpha * P^T pr + (1 - alpha) / n
    A = torch.eye(n, dtype=torch.double) - alpha * P.t()
    return torch.linalg.solve(A, torch.full((n, ), (1 - alpha) / n,
                                            dtype=torch.double))


def graph():
    edge_index, n = planted(num_blocks=3, size=40, p_in=0.15, p_out=0.02,
                            seed=4)
    # A few isolated nodes and a directed edge (dangling targets):
    extra = torch.tensor([[0, 41], [125, 125]])
    cluster = torch.arange(n + 6) // 42
    return torch.cat([edge_index, extra], 1), n + 6, cluster


def test_pagerank_matches_a_dense_solve():
    edge_index, n, cluster = graph()
    pr = subgraph_pagerank(edge_index, cluster, n)
    assert pr.dtype == torch.double and pr.shape == (n, )
    for part in range(int(cluster.max()) + 1):
        nodes = (cluster == part).nonzero().view(-1)
        want = dense_pagerank(edge_index, nodes)
        assert torch.allclose(pr[nodes], want, atol=1e-10), part
        assert abs(float(pr[nodes].sum()) - 1.0) < 1e-10


@pytest.mark.parametrize('fraction', [0.0, 0.05, 0.1, 0.3])
def test_refinement_removes_the_fraction_and_keeps_symmetry(fraction):
    edge_index, n = planted(num_blocks=4, size=50, p_in=0.2, p_out=0.01,
                            seed=1)
    cluster = torch.randint(5, (n, ), generator=torch.Generator()
                            .manual_seed(0))
    cluster[:5] = torch.arange(5)  # Every part non-empty.
    keep, removed = pagerank_refine(edge_index, cluster, fraction, n)
    size = torch.bincount(cluster)
    lost = torch.bincount(cluster[removed], minlength=5)
    assert torch.equal(lost, torch.floor(size * fraction + 0.5).long())
    # They are the least-PageRank nodes of their part:
    pr = subgraph_pagerank(edge_index, cluster, n)
    for part in range(5):
        inside = cluster == part
        if bool(removed[inside].any()) and bool((~removed[inside]).any()):
            assert float(pr[inside & removed].max()) <= float(
                pr[inside & ~removed].min())
    kept = edge_index[:, keep]
    assert is_undirected(kept, num_nodes=n)
    assert not bool(removed[kept].any())  # Removed nodes have no edges.
    # Every edge between two kept nodes stays:
    both = ~(removed[edge_index[0]] | removed[edge_index[1]])
    assert torch.equal(keep, both)
    if fraction == 0.0:
        assert bool(keep.all())


def test_ties_go_to_the_larger_id():
    # A 4-cycle: every node has the same PageRank.
    edge_index = to_undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]))
    _, removed = pagerank_refine(edge_index, torch.zeros(4, dtype=torch.long),
                                 0.5)
    assert removed.tolist() == [False, False, True, True]


def test_transform_keeps_nodes_and_edge_attributes():
    edge_index, n, cluster = graph()
    edge_index = coalesce(to_undirected(edge_index, num_nodes=n))
    data = Data(x=torch.randn(n, 3), edge_index=edge_index,
                edge_attr=torch.arange(edge_index.size(1)).float(),
                y=torch.arange(n), cluster=cluster)
    out = PageRankRefine(fraction=0.1)(data.clone())
    keep, removed = pagerank_refine(edge_index, cluster, 0.1, n)
    assert out.num_nodes == n and torch.equal(out.x, data.x)
    assert torch.equal(out.edge_index, edge_index[:, keep])
    assert torch.equal(out.edge_attr, data.edge_attr[keep])
    assert torch.equal(out.refined_out, removed)
    assert 'PageRankRefine(fraction=0.1' in repr(PageRankRefine(0.1))


def test_bad_input():
    edge_index, n, cluster = graph()
    with pytest.raises(ValueError, match="'fraction'"):
        pagerank_refine(edge_index, cluster, 1.0)
    with pytest.raises(ValueError, match="'fraction'"):
        PageRankRefine(-0.1)
    with pytest.raises(ValueError, match="'cluster'"):
        pagerank_refine(edge_index, cluster[:-1], 0.1, n)
    with pytest.raises(ValueError, match="'cluster'"):
        pagerank_refine(edge_index, cluster.float(), 0.1, n)
    with pytest.raises(ValueError, match="'alpha'"):
        subgraph_pagerank(edge_index, cluster, n, alpha=1.0)
    with pytest.raises(ValueError, match="data.cluster"):
        PageRankRefine()(Data(edge_index=edge_index, num_nodes=n))
    with pytest.raises(ValueError, match="edge_index"):
        PageRankRefine()(Data(num_nodes=n, cluster=cluster))
