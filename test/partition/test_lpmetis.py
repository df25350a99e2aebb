import logging
import math

import pytest
import torch
from torch_geometric.utils import grid, remove_self_loops, to_undirected

from torch_autoscale.partition import lpmetis, partition_report


def cliques(num_cliques: int, size: int) -> torch.Tensor:
    idx = torch.arange(size)
    row, col = torch.meshgrid(idx, idx, indexing='ij')
    mask = row != col
    block = torch.stack([row[mask], col[mask]])
    return torch.cat([block + i * size for i in range(num_cliques)], dim=1)


def planted(num_blocks: int = 8, size: int = 100, p_in: float = 0.1,
            p_out: float = 0.002, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = num_blocks * size
    block = torch.arange(n) // size
    row, col = torch.triu_indices(n, n, offset=1)
    prob = torch.where(block[row] == block[col], p_in, p_out)
    keep = torch.rand(row.numel(), generator=gen) < prob
    return to_undirected(torch.stack([row[keep], col[keep]])), n


def assert_partition(cluster, num_nodes, num_parts):
    assert cluster.dtype == torch.long and cluster.size() == (num_nodes, )
    assert int(cluster.min()) == 0 and int(cluster.max()) == num_parts - 1
    # Exactly `num_parts` non-empty parts:
    assert torch.bincount(cluster, minlength=num_parts).min() > 0


@pytest.mark.parametrize('num_parts', [2, 5, 16])
def test_valid_partition_and_balance(num_parts):
    edge_index, num_nodes = planted()
    cluster = lpmetis(edge_index, num_nodes, num_parts, seed=0)
    assert_partition(cluster, num_nodes, num_parts)
    # The documented bound: METIS' 3% tolerance plus one cluster.
    cap = math.ceil(num_nodes / (32 * num_parts))
    sizes = torch.bincount(cluster)
    assert int(sizes.max()) <= 1.03 * num_nodes / num_parts + cap


def test_disconnected_cliques_are_never_cut():
    edge_index = cliques(16, 10)
    for seed, cap in ((0, None), (1, None), (2, 10)):
        cluster = lpmetis(edge_index, 160, num_parts=4, seed=seed,
                          max_cluster_size=cap)
        report = partition_report(edge_index, cluster, 4)
        assert report.cut_edges == 0
        assert report.sizes.tolist() == [40, 40, 40, 40]


def test_planted_communities_found():
    edge_index, num_nodes = planted(p_out=0.0005)
    metis_cut = partition_report(
        edge_index, lpmetis(edge_index, num_nodes, 8, rounds=0), 8).edge_cut
    report = partition_report(edge_index,
                              lpmetis(edge_index, num_nodes, 8, seed=1), 8)
    random_cut = 1 - 1 / 8
    assert report.edge_cut < 0.1 < random_cut
    assert report.edge_cut <= 1.6 * metis_cut + 0.01


def test_repeats_for_a_seed():
    edge_index, _ = grid(30, 30)
    edge_index, _ = remove_self_loops(edge_index)
    a = lpmetis(edge_index, 900, 6, seed=3)
    b = lpmetis(edge_index, 900, 6, seed=3)
    assert torch.equal(a, b)
    c = lpmetis(edge_index, 900, 6, seed=4)
    assert c.size() == a.size()


def test_coarsens_to_few_nodes(caplog):
    edge_index, num_nodes = planted(num_blocks=4, size=250)
    with caplog.at_level('INFO', logger='torch_autoscale.partition.lpmetis'):
        lpmetis(edge_index, num_nodes, 4, seed=0)
    rounds = [r.getMessage() for r in caplog.records if 'round' in r.message]
    assert len(rounds) >= 1
    coarse = int(rounds[-1].split(': ')[1].split(' nodes')[0])
    assert coarse < num_nodes / 3


def test_weights_and_directed_input():
    # A path 0-1-2-3 given in one direction, with a light middle edge:
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    weight = torch.tensor([10.0, 0.1, 10.0])
    cluster = lpmetis(edge_index, 4, 2, edge_weight=weight, seed=0)
    assert cluster[0] == cluster[1] and cluster[2] == cluster[3]
    assert cluster[1] != cluster[2]


def test_edgeless_graph_and_single_part():
    edge_index = torch.empty(2, 0, dtype=torch.long)
    cluster = lpmetis(edge_index, 10, 3, seed=0)
    assert_partition(cluster, 10, 3)
    assert torch.bincount(cluster).max() <= 4
    assert lpmetis(cliques(2, 3), 6, 1).tolist() == [0] * 6


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_parts=0), 'num_parts'),
    (dict(num_parts=1000), 'num_parts'),
    (dict(num_parts=2, p_ratio=1.5), 'p_ratio'),
    (dict(num_parts=2, p_b=-0.1), 'p_b'),
    (dict(num_parts=2, rounds=-1), 'rounds'),
    (dict(num_parts=2, iterations=0), 'iterations'),
    (dict(num_parts=2, max_cluster_size=0), 'max_cluster_size'),
    (dict(num_parts=2, edge_weight=torch.ones(3)), 'edge_weight'),
    (dict(num_parts=2, refine=-2), "'refine' must be at least 0"),
    (dict(num_parts=2, refine=1.5), "'refine' must be an integer"),
    (dict(num_parts=2, seed=1.5), "'seed' must be an integer"),
    (dict(num_parts=2, chunk_edges=0), "'chunk_edges' must be at least"),
    (dict(num_parts=2, seed='0'), "'seed' must be an integer"),
    (dict(num_parts=2, seed=2**64), "'seed' must lie in"),
    (dict(num_parts=2, max_coarse_entries=-1), "'max_coarse_entries'"),
    (dict(num_parts=2, max_coarse_entries=1.5), "'max_coarse_entries'"),
    (dict(num_parts=2, rounds=2.5), "'rounds' must be an integer"),
    (dict(num_parts=2, iterations=1.5), "'iterations' must be an integer"),
    (dict(num_parts=2, max_cluster_size=2.5), "'max_cluster_size' must be"),
    (dict(num_parts=2.0), "'num_parts' must be an integer"),
    (dict(num_parts=2, p_b='0.1'), "'p_b'"),
    (dict(num_parts=2, p_ratio=None), "'p_ratio'"),
    # Checked also where a single part needs no work:
    (dict(num_parts=1, seed=1.5), "'seed'"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lpmetis(cliques(4, 5), 20, **kwargs)


def test_refinement_lowers_the_cut_and_keeps_balance():
    edge_index, num_nodes = planted(num_blocks=16, size=60, p_in=0.08,
                                    p_out=0.004)
    cuts = []
    for refine in (0, 4):
        cluster = lpmetis(edge_index, num_nodes, 8, seed=0, refine=refine)
        assert_partition(cluster, num_nodes, 8)
        report = partition_report(edge_index, cluster, 8)
        assert report.size_ratio <= 1.03 + 8 / num_nodes * math.ceil(
            num_nodes / (32 * 8))
        cuts.append(report.edge_cut)
    assert cuts[1] < cuts[0]


def test_dense_and_sparse_label_sums_agree(monkeypatch):
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    monkeypatch.setattr(module, 'DENSE_BLOCK', 64)  # Many blocks.
    gen = torch.Generator().manual_seed(0)
    lab = torch.randint(7, (2000, ), generator=gen)
    rows = torch.randint(100, (2000, ), generator=gen).sort().values
    score = torch.rand(2000, generator=gen)
    dense = module.dense_sums(rows, lab, score, 100, 7)
    sparse = module.sparse_sums(rows, lab, score, 100, 7)
    order = (dense[0] * 7 + dense[1]).argsort()
    for a, b in zip(dense, sparse):  # Both sum in the entries' order.
        assert torch.equal(a[order], b)


def test_dense_and_sparse_label_updates_agree(monkeypatch):
    # Past DENSE_RATIO, `propose_block` sorts instead of a dense buffer;
    # the partition is the same either way.
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    edge_index, num_nodes = planted(num_blocks=8, size=40, p_in=0.2,
                                    p_out=0.01, seed=3)
    outs = []
    for ratio in (0, 10**9):
        monkeypatch.setattr(module, 'DENSE_RATIO', ratio)
        outs.append(lpmetis(edge_index, num_nodes, 6, seed=1, verbose=False))
    assert torch.equal(*outs)


def test_heaviest_entries_of_the_coarse_graph():
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    # A symmetric graph with small integer weights (many ties):
    gen = torch.Generator().manual_seed(0)
    n = 60
    lo, hi = torch.randint(n, (2, 400), generator=gen)
    keep = lo < hi
    lo, hi = lo[keep], hi[keep]
    key = torch.unique(lo * n + hi)
    lo, hi = key // n, key % n
    weight = torch.randint(1, 4, (key.numel(), ), generator=gen).float()
    graph = module.symmetric_csr(lo, hi, weight, n, chunk_edges=16)
    rowptr, col, w = graph.load()
    row = torch.repeat_interleave(torch.arange(n), rowptr.diff())
    tie = module.pair_tie(row, col)
    for budget in (0, 1, 50, 200, 300, col.numel() - 1):
        r, c, kw = module.heaviest_entries(graph, budget)
        k = max(1, budget // (2 * n))
        # The reference: a sort of every row by (weight, tie) decreasing,
        # then column increasing; the union of every row's first k.
        want = set()
        for v in range(n):
            entries = sorted(
                range(int(rowptr[v]), int(rowptr[v + 1])),
                key=lambda e: (-float(w[e]), -int(tie[e]), int(col[e])))
            for e in entries[:k]:
                want |= {(v, int(col[e])), (int(col[e]), v)}
        kept_row = torch.repeat_interleave(torch.arange(n), r.diff())
        got = list(zip(kept_row.tolist(), c.tolist()))
        assert set(got) == want and len(got) == len(want), budget
        assert c.numel() <= max(budget, 2 * n)
        # Every node with a neighbour keeps one; weights come along:
        assert torch.equal(r.diff() > 0, rowptr.diff() > 0)
        lookup = dict(zip(zip(row.tolist(), col.tolist()), w.tolist()))
        assert kw.tolist() == [lookup[pair] for pair in got]
    # Within the budget, the whole graph:
    r, c, kw = module.heaviest_entries(graph, col.numel())
    assert torch.equal(c, col) and torch.equal(kw, w)


def test_too_few_entries_per_coarse_node_warn(caplog):
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    with caplog.at_level(logging.WARNING, logger=module.log.name):
        assert module.entries_per_node(600, 100) == 3
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger=module.log.name):
        assert module.entries_per_node(399, 100) == 1
        assert module.entries_per_node(0, 100) == 1
    assert len(caplog.records) == 2
    assert "Raise it to 600" in caplog.records[0].getMessage()


def test_coarse_budget_bounds_what_metis_gets(monkeypatch):
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    seen = []
    original = module.partition_csr

    def spy(rowptr, col, *args):
        seen.append(col.numel())
        return original(rowptr, col, *args)

    monkeypatch.setattr(module, 'partition_csr', spy)
    edge_index, num_nodes = planted(num_blocks=8, size=60, p_in=0.3,
                                    p_out=0.05, seed=2)
    full = lpmetis(edge_index, num_nodes, 8, seed=0, verbose=False)
    budgeted = lpmetis(edge_index, num_nodes, 8, seed=0, verbose=False,
                       max_coarse_entries=seen[0] // 4)
    assert seen[1] <= seen[0] // 4 < seen[0]
    assert_partition(budgeted, num_nodes, 8)
    # A budget the coarse graph fits in changes nothing:
    same = lpmetis(edge_index, num_nodes, 8, seed=0, verbose=False,
                   max_coarse_entries=seen[0])
    assert torch.equal(same, full)


def test_hash_draws():
    import importlib
    module = importlib.import_module('torch_autoscale.partition.lpmetis')
    mask = (1 << 64) - 1

    def mix(z):  # SplitMix64's finalizer on Python integers.
        z &= mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    z = torch.tensor([0, 1, -1, 2**63 - 1, -2**63, 123456789, -987654321])
    out = module.mix64(z)
    assert [v & mask for v in out.tolist()] == [mix(v) for v in z.tolist()]

    key = module.stream_key(5, 1, 2)
    assert key == module.stream_key(5, 1, 2) != module.stream_key(5, 2, 1)
    a = torch.arange(100000)
    b = torch.randint(10**6, (100000, ), generator=torch.Generator())
    draws = module.hash_uniform(key, a, b)
    assert draws.dtype == torch.float64
    assert 0 <= float(draws.min()) and float(draws.max()) < 1
    assert abs(float(draws.mean()) - 0.5) < 0.01
    # A pure function of its inputs, entry by entry:
    assert torch.equal(module.hash_uniform(key, a[7:9], b[7:9]), draws[7:9])
    assert not torch.equal(module.hash_uniform(key, b, a), draws)
    bits = module.hash_bits(key, a)
    for p in (0.0, 0.1, 0.5, 1.0):
        assert torch.equal(module.uniform_below(bits, p),
                           module.bits_to_uniform(bits) < p)


def test_independent_of_blocks_and_edge_order():
    edge_index, num_nodes = planted(num_blocks=6, size=50)
    ref = lpmetis(edge_index, num_nodes, 6, seed=3, verbose=False)
    for chunk_edges in (1, 7, 100):
        out = lpmetis(edge_index, num_nodes, 6, seed=3, verbose=False,
                      chunk_edges=chunk_edges)
        assert torch.equal(out, ref)
    # Another order of the edges, one direction only, duplicates:
    perm = torch.randperm(edge_index.size(1),
                          generator=torch.Generator().manual_seed(0))
    shuffled = edge_index[:, perm]
    upper = shuffled[:, shuffled[0] < shuffled[1]]
    out = lpmetis(upper.flip(0), num_nodes, 6, seed=3, verbose=False)
    assert torch.equal(out, ref)
    weight = torch.rand(edge_index.size(1))
    a = lpmetis(edge_index, num_nodes, 6, edge_weight=weight, seed=3,
                verbose=False)
    b = lpmetis(shuffled, num_nodes, 6, edge_weight=weight[perm], seed=3,
                verbose=False, chunk_edges=50)
    assert torch.equal(a, b)


def assert_coarse_equal(a, b):
    for name in ('node', 'rowptr', 'col', 'weight', 'count', 'part'):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def check_coarse(coarse, edge_index, cluster, n, complete=True):
    r"""What a kept coarse graph must be for the graph it came from (all
    of it if :obj:`complete`, else some of its edges)."""
    k = coarse.num_nodes
    assert coarse.node.shape == (n, ) and coarse.node.dtype == torch.long
    assert int(coarse.node.min()) >= 0 and int(coarse.node.max()) < k
    # Every coarse node holds its original nodes, counted:
    assert torch.equal(coarse.count, coarse.node.bincount(minlength=k))
    # Symmetric, without self-loops, columns sorted within rows:
    c = coarse.edge_index()
    assert not bool((c[0] == c[1]).any())
    key = c[0] * k + c[1]
    assert bool((key[1:] > key[:-1]).all())
    rev = torch.sort(c[1] * k + c[0])
    assert torch.equal(rev.values, key)
    assert torch.equal(coarse.weight[rev.indices], coarse.weight)
    # The coarse edges are the original edges between two coarse nodes:
    row, col = coarse.node[edge_index]
    cross = row != col
    assert bool(torch.isin(key, row[cross] * k + col[cross]).all())
    if complete:
        assert bool(torch.isin(row[cross] * k + col[cross], key).all())
    assert coarse.part.shape == (k, )
    assert 0 <= int(coarse.part.min()) <= int(coarse.part.max()) < int(
        cluster.max()) + 1


@pytest.mark.parametrize('kwargs', [{}, dict(rounds=0),
                                    dict(max_coarse_entries=130)])
def test_coarse_graph_is_kept(kwargs):
    edge_index, n = planted(num_blocks=4, size=30, p_in=0.3, p_out=0.02,
                            seed=1)
    kwargs = dict(kwargs, max_cluster_size=10)
    cluster, coarse = lpmetis(edge_index, n, 4, seed=3, verbose=False,
                              return_coarse=True, **kwargs)
    assert torch.equal(cluster, lpmetis(edge_index, n, 4, seed=3,
                                        verbose=False, **kwargs))
    check_coarse(coarse, edge_index, cluster, n,
                 'max_coarse_entries' not in kwargs)
    if kwargs.get('rounds') == 0:  # The input graph itself.
        assert torch.equal(coarse.node, torch.arange(n))
    else:
        assert coarse.num_nodes < n / 4
    if 'max_coarse_entries' in kwargs:
        assert coarse.col.numel() <= 130
    # Without the refinement, every node is in its coarse node's part:
    cluster, coarse = lpmetis(edge_index, n, 4, seed=3, verbose=False,
                              return_coarse=True, refine=0, **kwargs)
    assert torch.equal(cluster, coarse.part[coarse.node])
    # Weights are the summed original weights between two coarse nodes
    # (here ones), over the largest original weight:
    if len(kwargs) == 1:
        row, col = coarse.node[edge_index]
        cross = row != col
        k = coarse.num_nodes
        key, total = torch.unique(row[cross] * k + col[cross],
                                  return_counts=True)
        assert torch.equal(key, coarse.edge_index()[0] * k +
                           coarse.edge_index()[1])
        # Both directions of an edge sum to its weight, 2, and the largest
        # is 2: every edge counts one.
        assert torch.equal(coarse.weight, total.float())


def test_coarse_graph_permutes_with_the_nodes():
    edge_index, n = planted(num_blocks=3, size=20, p_in=0.4, p_out=0.02,
                            seed=2)
    _, coarse = lpmetis(edge_index, n, 3, seed=0, verbose=False,
                        return_coarse=True, max_cluster_size=10)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    moved = coarse.permute(perm)
    assert torch.equal(moved.node, coarse.node[perm])
    assert moved.rowptr is coarse.rowptr
    with pytest.raises(ValueError, match="'perm'"):
        coarse.permute(perm[:-1])


def test_coarse_graph_of_a_single_part():
    edge_index, n = planted(num_blocks=3, size=20, p_in=0.4, p_out=0.02,
                            seed=2)
    cluster, coarse = lpmetis(edge_index, n, 1, seed=0, verbose=False,
                              return_coarse=True, max_cluster_size=10)
    assert cluster.tolist() == [0] * n
    assert coarse.part.tolist() == [0] * coarse.num_nodes
    check_coarse(coarse, edge_index, cluster, n)
