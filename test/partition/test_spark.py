import importlib

import pytest
import torch
from torch_geometric.utils import grid

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.partition import spark as sp

lp = importlib.import_module('torch_autoscale.partition.lpmetis')

pytest.importorskip('pyspark')

from pyspark.sql import functions as F  # noqa: E402


def int64_cases() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    rand = torch.randint(-2**63, 2**63 - 1, (300, ), generator=gen)
    edge = torch.tensor([0, 1, -1, 2**63 - 1, -2**63, 2**62, -2**62,
                         2**32 - 1, 2**32, -2**32, 0xFFFF, 1 << 48,
                         lp.stream_key(7, 1), -lp.stream_key(7, 1)])
    return torch.cat([edge, rand, torch.arange(100)])


def columns(df, *names):
    rows = df.orderBy('i').select(*names).collect()
    return [[r[name] for r in rows] for name in names]


def frame(spark, **cols):
    n = len(next(iter(cols.values())))
    rows = [tuple([i] + [int(v[i]) for v in cols.values()])
            for i in range(n)]
    return spark.createDataFrame(rows, ['i'] + list(cols))


def test_wrapping_arithmetic(spark):
    a = int64_cases()
    b = a.flip(0)
    df = frame(spark, a=a, b=b)
    factors = (sp.MIX1, sp.MIX2, sp.GOLDEN, 3, 2**64 - 1)
    for i, factor in enumerate(factors):
        df = df.withColumn(f'p{i}', sp.wrapping_mul('a', factor))
    df = df.withColumn('s', sp.wrapping_add('a', 'b'))
    df = df.withColumn('g', sp.wrapping_add('a', sp.GOLDEN))
    out = columns(df, *[f'p{i}' for i in range(len(factors))], 's', 'g')
    for got, factor in zip(out, factors):
        signed = factor - 2**64 if factor >= 2**63 else factor
        assert got == (a * signed).tolist()
    assert out[-2] == (a + b).tolist()
    assert out[-1] == (a + (sp.GOLDEN - 2**64)).tolist()


def test_hash_bits_match_torch(spark):
    a = int64_cases()
    b = torch.roll(a, 7)
    df = sp.with_mix64(frame(spark, a=a, b=b), 'a', 'mix')
    keys = (lp.stream_key(3, 1, 2), lp.stream_key(2**62, 9))
    for k, key in enumerate(keys):
        df = sp.with_hash_bits(df, key, 'a', out=f'h{k}')
        df = sp.with_hash_bits(df, key, 'a', 'b', out=f'e{k}')
        df = df.withColumn(f'u{k}', sp.bits_to_uniform(F.col(f'e{k}')))
        df = df.withColumn(f'b{k}', sp.uniform_below(F.col(f'e{k}'), 0.1))
    df = sp.with_hash_uniform(df, 0, 'a', 'b', out='u')
    names = ['mix', 'u'] + [f'{c}{k}' for k in range(len(keys))
                            for c in 'heub']
    # Only the named columns are added:
    assert sorted(df.columns) == sorted(['i', 'a', 'b'] + names)
    out = dict(zip(names, columns(df, *names)))
    assert out['mix'] == lp.mix64(a).tolist()
    assert out['u'] == lp.hash_uniform(0, a, b).tolist()
    for k, key in enumerate(keys):
        assert out[f'h{k}'] == lp.hash_bits(key, a).tolist()
        bits = lp.hash_bits(key, a, b)
        assert out[f'e{k}'] == bits.tolist()
        assert out[f'u{k}'] == lp.hash_uniform(key, a, b).tolist()
        assert out[f'b{k}'] == lp.uniform_below(bits, 0.1).tolist()


def edges_frame(spark, edge_index, weight=None):
    cols = {'src': edge_index[0], 'dst': edge_index[1]}
    rows = list(zip(*[c.tolist() for c in cols.values()]))
    if weight is None:
        return spark.createDataFrame(rows, 'src long, dst long')
    rows = [r + (float(w), ) for r, w in zip(rows, weight.tolist())]
    return spark.createDataFrame(rows, 'src long, dst long, weight double')


def test_read_edges_paths(spark, tmp_path):
    edges = edges_frame(spark, torch.tensor([[0, 1, 2], [1, 2, 0]]),
                        torch.tensor([1.0, 2.0, 0.5]))
    edges.write.parquet(str(tmp_path / 'edges.parquet'))
    (tmp_path / 'edges.csv').write_text(
        'src,dst,weight\n0,1,1.0\n1,2,2\n2,0,0.5\n')
    for path in (tmp_path / 'edges.parquet', str(tmp_path / 'edges.csv')):
        df, n = sp.read_edges(path, spark=spark)
        assert n == 3
        assert dict(df.dtypes) == {'src': 'bigint', 'dst': 'bigint',
                                   'weight': 'double'}
        rows = sorted(tuple(r) for r in df.collect())
        assert rows == [(0, 1, 1.0), (1, 2, 2.0), (2, 0, 0.5)]
    df, n = sp.read_edges(edges.drop('weight'), num_nodes=10)
    assert n == 10 and df.columns == ['src', 'dst']


def test_read_edges_errors(spark, tmp_path):
    ok = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="lack the column.*'dst'"):
        sp.read_edges(edges_frame(spark, ok).withColumnRenamed('dst', 'x'))
    with pytest.raises(ValueError, match="'src'.*negative"):
        sp.read_edges(edges_frame(spark, torch.tensor([[-1], [0]])))
    with pytest.raises(ValueError, match="'dst'.*node id 2.*num_nodes"):
        sp.read_edges(edges_frame(spark, ok), num_nodes=2)
    with pytest.raises(PartitionInputError, match='non-negative'):
        sp.read_edges(edges_frame(spark, ok, torch.tensor([1.0, -2.0])))
    with pytest.raises(PartitionInputError, match='finite'):
        sp.read_edges(edges_frame(spark, ok,
                                  torch.tensor([1.0, float('nan')])))
    with pytest.raises(ValueError, match="'src'.*integer node ids"):
        sp.read_edges(edges_frame(spark, ok).withColumn(
            'src', F.col('src').cast('double')))
    with pytest.raises(ValueError, match="pass 'num_nodes'"):
        sp.read_edges(edges_frame(spark, ok).limit(0))
    (tmp_path / 'bad.csv').write_text('src,dst\n0,1\nx,2\n')
    with pytest.raises(ValueError, match="'src'.*1 missing or non-integer"):
        sp.read_edges(str(tmp_path / 'bad.csv'), spark=spark)
    with pytest.raises(ValueError, match="'edges' must be a Spark"):
        sp.read_edges(ok)


def graphs():
    gen = torch.Generator().manual_seed(1)
    n = 60
    rand = torch.randint(n, (2, 400), generator=gen)  # Duplicates, loops.
    grid_edges, _ = grid(6, 7)
    yield 'random', rand, n, None
    yield 'random-weighted', rand, n, torch.rand(400, generator=gen) * 5
    yield 'grid', grid_edges, 42, None
    yield 'int-weights', rand, n, torch.randint(0, 4, (400, ),
                                                generator=gen).double()


def torch_entries(graph):
    rows = lp.rows_of(graph.degree())
    return sorted(zip(rows.tolist(), graph.col.tolist(),
                      graph.weight.tolist()))


@pytest.mark.parametrize('name,edge_index,n,weight', list(graphs()))
def test_undirected_edges_and_pruning(spark, name, edge_index, n, weight):
    graph = lp.undirected_csr(edge_index, weight, n)
    df, _ = sp.read_edges(edges_frame(spark, edge_index, weight),
                          num_nodes=n)
    entries = sp.symmetric_entries(sp.undirected_edges(df)).cache()
    got = sorted(tuple(r) for r in entries.collect())
    assert got == torch_entries(graph)

    merged = torch.rand(n, generator=torch.Generator().manual_seed(2)) + 1
    merged_df = spark.createDataFrame(
        [(i, float(m)) for i, m in enumerate(merged.tolist())],
        'node long, merged float')
    key = lp.stream_key(lp.stream_key(5, 0), lp.PRUNE)
    # The first round (no merged nodes) and a later one:
    first = name in ('random', 'grid')
    p_ratio, p_b = (0.5, 0.1) if first else (0.7, 0.3)
    kept, col, score = lp.prune_block(
        0, graph.degree(), graph.col, graph.weight,
        torch.ones(n) if first else merged, p_ratio, p_b, key)
    rows = lp.rows_of(kept)
    want = sorted(zip(rows.tolist(), col.tolist(), score.tolist()))
    out = sp.prune_entries(entries, p_ratio, p_b, key,
                           None if first else merged_df)
    assert sorted(tuple(r) for r in out.collect()) == want
    entries.unpersist()


def test_contraction(spark):
    gen = torch.Generator().manual_seed(3)
    n = 80
    edge_index = torch.randint(n, (2, 500), generator=gen)
    weight = torch.rand(500, generator=gen) * 3
    graph = lp.undirected_csr(edge_index, weight, n)
    label = torch.randint(0, 3 * n, (n, ), generator=gen) * 5  # Gaps.
    uniq, inv = torch.unique(label, return_inverse=True)
    coarse = lp.contract(graph, inv, uniq.numel(), lp.Workspace(), 'c',
                         None)

    df, _ = sp.read_edges(edges_frame(spark, edge_index, weight),
                          num_nodes=n)
    entries = sp.symmetric_entries(sp.undirected_edges(df))
    labels = spark.createDataFrame(list(enumerate(label.tolist())),
                                   'node long, label long')
    clusters = sp.cluster_ids(labels)
    got = sorted(tuple(r) for r in clusters.collect())
    assert got == list(enumerate(inv.tolist()))
    out = sp.symmetric_entries(sp.contract_entries(entries, clusters))
    assert sorted(tuple(r) for r in out.collect()) == torch_entries(coarse)


@pytest.mark.parametrize('refine', [False, True])
def test_label_updates(spark, refine):
    gen = torch.Generator().manual_seed(4)
    n = 90
    edge_index = torch.randint(n, (2, 600), generator=gen)
    graph = lp.undirected_csr(edge_index, None, n)
    rank = lp.degree_rank(graph.degree())
    if refine:  # As after METIS: few labels, a float cap, priorities.
        label = torch.randint(0, 4, (n, ), generator=gen)
        count, cap, num_labels = torch.ones(n, dtype=torch.long), 25.7, 4
        pruned, priority = graph, rank
    else:  # A later round: merged counts, an integer cap, node order.
        label = rank.clone()
        count = torch.randint(1, 4, (n, ), generator=gen)
        cap, num_labels, priority = 6, n, None
        pruned = lp.prune(graph, count.float(), 0.5, 0.1, 11,
                          lp.Workspace(), 'p', None)
    key = lp.stream_key(9, 0, lp.ACTIVE)
    nodes = [(i, int(label[i]), int(count[i]), int(rank[i]))
             for i in range(n)]
    want = lp.label_rounds(pruned, label.clone(), count, cap, num_labels,
                           3, key, priority, refine)
    assert not torch.equal(want, label)  # Labels moved.

    entries = spark.createDataFrame(
        list(zip(*[t.tolist() for t in (lp.rows_of(pruned.degree()),
                                        pruned.col, pruned.weight)])),
        'row long, col long, score float')
    nodes = spark.createDataFrame(
        nodes, 'node long, label long, count long, priority long')
    if priority is None:
        nodes = nodes.drop('priority')
    out = sp.label_updates(entries, nodes, cap, 3, key)
    got = sorted((r['node'], r['label']) for r in out.collect())
    assert got == list(enumerate(want.tolist()))
    assert estimate_bits(out) <= 64  # Not raised to a power per iteration.


def estimate_bits(df) -> int:
    r"""The bits of Spark's size estimate of :obj:`df`'s plan."""
    jdf = getattr(df, '_jdf', None)
    if jdf is None:  # pragma: no cover - Spark Connect
        pytest.skip('needs the JVM of a classic Spark session')
    size = jdf.queryExecution().optimizedPlan().stats().sizeInBytes()
    return int(size).bit_length()


def test_checkpoint_bounds_the_size_estimate(spark):
    # `localCheckpoint` keeps the size estimate of the plan it cuts, and a
    # join is estimated as the product of its inputs: state joined with
    # itself and checkpointed, iteration after iteration, raised it to a
    # power every time (minutes and gigabytes of the driver's planning in
    # LPMetis' label updates). `checkpoint` starts it afresh.
    def step(df):
        other = df.select('node', F.col('label').alias('other'))
        return df.join(other, 'node').select(
            'node', ((F.col('label') + F.col('other') + 1) % 7)
            .alias('label'))

    start = spark.range(40).select(F.col('id').alias('node'),
                                   (F.col('id') % 5).alias('label'))
    plain = fresh = start
    for _ in range(5):
        plain = step(plain).localCheckpoint()
        fresh = sp.checkpoint(step(fresh))
        assert estimate_bits(fresh) <= 64
    assert sorted(fresh.collect()) == sorted(plain.collect())
    assert fresh.schema == plain.schema
    assert estimate_bits(plain) > 64  # What `checkpoint` avoids.

    # Label updates over a frame with a blown-up estimate: computed once,
    # and what they return has a bounded estimate.
    nodes = plain.select('node', (F.col('node') % 4).alias('label'),
                         F.lit(1).cast('bigint').alias('count'))
    entries = start.select(F.col('node').alias('row'),
                           ((F.col('node') + 1) % 40).alias('col'),
                           F.lit(1.0).cast('float').alias('score'))
    out = sp.label_updates(entries, nodes, 15, 3, 7)
    assert estimate_bits(out) <= 64
    assert out.count() == 40
