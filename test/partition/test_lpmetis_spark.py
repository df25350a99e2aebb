import os

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import barabasi_albert_graph, grid

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.loader import PartitionedData
from torch_autoscale.partition import lpmetis, partition
from torch_autoscale.store import partition_store, store_from_data

from test.partition.test_lpmetis import (
    assert_coarse_equal,
    cliques,
    planted,
)

pytest.importorskip('pyspark')

from torch_autoscale.partition.lpmetis_spark import (  # noqa: E402
    lpmetis_spark,
    read_parts,
)
from test.partition.test_spark import (  # noqa: E402
    edges_frame,
    estimate_bits,
)


def parts_of(df, n):
    return read_parts(df, n)


def graphs():
    gen = torch.Generator().manual_seed(5)
    rand = torch.randint(120, (2, 700), generator=gen)  # Loops, copies.
    grid_edges, _ = grid(10, 12)
    power_law = barabasi_albert_graph(150, 3)
    sbm, n_sbm = planted(num_blocks=5, size=30, p_in=0.25, p_out=0.01,
                         seed=2)
    yield 'random', rand, 120, None
    yield 'random-weighted', rand, 120, torch.rand(700, generator=gen) * 4
    yield 'grid', grid_edges, 120, None
    yield 'cliques', cliques(6, 8), 48, None
    yield 'power-law', power_law, 150, None
    yield 'sbm-weighted', sbm, n_sbm, (
        torch.randint(1, 5, (sbm.size(1), ), generator=gen).double())


# Fewer label updates than the defaults keep the Spark jobs short; the
# defaults run in `test_partition_engine_and_parquet_output`.
FAST = dict(iterations=2, refine=2)


@pytest.mark.parametrize('seed,graph', list(enumerate(graphs())))
def test_spark_equals_in_process(spark, seed, graph):
    name, edge_index, n, weight = graph
    df = edges_frame(spark, edge_index, weight)
    want = lpmetis(edge_index, n, 4, edge_weight=weight, seed=seed,
                   verbose=False, **FAST)
    out = lpmetis_spark(df, 4, num_nodes=n, spark=spark, seed=seed,
                        verbose=False, **FAST)
    assert torch.equal(parts_of(out, n), want), name
    # Spark's size estimate stays that of one checkpoint, whatever the
    # rounds and iterations (it used to be raised to a power in each):
    assert estimate_bits(out) <= 64


def test_spark_equals_in_process_with_other_arguments(spark):
    edge_index, n = planted(num_blocks=4, size=30, p_in=0.3, p_out=0.02,
                            seed=1)
    df = edges_frame(spark, edge_index).cache()
    for kwargs in (dict(rounds=0), dict(rounds=3, iterations=1, refine=1),
                   dict(refine=0, p_ratio=0.2, p_b=0.5, iterations=2),
                   dict(max_cluster_size=3, **FAST),
                   dict(max_coarse_entries=40, **FAST),
                   dict(rounds=0, max_coarse_entries=100, **FAST)):
        want = lpmetis(edge_index, n, 5, seed=1, verbose=False, **kwargs)
        got = parts_of(lpmetis_spark(df, 5, num_nodes=n, spark=spark,
                                     seed=1, verbose=False, **kwargs), n)
        assert torch.equal(got, want), kwargs
    # Isolated nodes (ids past the last edge) and a single part:
    want = lpmetis(edge_index, n + 7, 3, seed=2, verbose=False, **FAST)
    got = parts_of(lpmetis_spark(df, 3, num_nodes=n + 7, spark=spark,
                                 seed=2, verbose=False, **FAST), n + 7)
    assert torch.equal(got, want)
    one = parts_of(lpmetis_spark(df, 1, num_nodes=n, spark=spark), n)
    assert one.tolist() == [0] * n


def test_spark_keeps_the_in_process_coarse_graph(spark):
    edge_index, n = planted(num_blocks=4, size=30, p_in=0.3, p_out=0.02,
                            seed=1)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randint(1, 5, (edge_index.size(1), ), generator=gen)
    df = edges_frame(spark, edge_index, weight.double()).cache()
    for num_parts, kwargs in ((5, dict(max_cluster_size=8)),
                              (5, dict(rounds=0)),
                              (5, dict(max_cluster_size=8,
                                       max_coarse_entries=60)),
                              (1, dict(max_cluster_size=8))):
        want = lpmetis(edge_index, n, num_parts, edge_weight=weight,
                       seed=1, verbose=False, return_coarse=True,
                       **FAST, **kwargs)
        parts, coarse = lpmetis_spark(df, num_parts, num_nodes=n,
                                      spark=spark, seed=1, verbose=False,
                                      return_coarse=True, **FAST, **kwargs)
        assert torch.equal(parts_of(parts, n), want[0]), kwargs
        assert_coarse_equal(coarse, want[1])
    # The same through `partition(engine='spark')`, parts as a tensor:
    want = lpmetis(edge_index, n, 5, edge_weight=weight, seed=1,
                   verbose=False, return_coarse=True, **FAST,
                   max_cluster_size=8)
    cluster, coarse = partition(edge_index, 5, method='lpmetis',
                                engine='spark', num_nodes=n,
                                edge_weight=weight, seed=1, spark=spark,
                                verbose=False, return_coarse=True, **FAST,
                                max_cluster_size=8)
    assert torch.equal(cluster, want[0])
    assert_coarse_equal(coarse, want[1])


def test_partition_engine_and_parquet_output(spark, tmp_path):
    edge_index, _ = grid(8, 8)
    want = lpmetis(edge_index, 64, 4, seed=0, verbose=False)
    got = partition(edge_index, 4, method='lpmetis', engine='spark',
                    seed=0, spark=spark, verbose=False)
    assert torch.equal(got, want)
    # From a Parquet path to a Parquet output, read back for the library:
    edges = str(tmp_path / 'edges.parquet')
    edges_frame(spark, edge_index).write.parquet(edges)
    out = str(tmp_path / 'parts.parquet')
    lpmetis_spark(edges, 4, spark=spark, seed=0, output=out, verbose=False)
    parts = read_parts(out, 64, 4, spark=spark)
    assert torch.equal(parts, want)
    assert sorted(os.listdir(tmp_path)) == ['edges.parquet', 'parts.parquet']
    # The parts feed GAS, in memory and from the on-disk store:
    data = Data(x=torch.randn(64, 3), edge_index=edge_index, num_nodes=64)
    pdata = PartitionedData(data, 4, cluster=parts)
    ref = PartitionedData(data, 4, method='lpmetis', seed=0, verbose=False)
    assert torch.equal(pdata.perm, ref.perm)
    assert torch.equal(pdata.ptr, ref.ptr)
    store = store_from_data(data, tmp_path / 'store')
    laid, perm, ptr = partition_store(store, parts, 4, tmp_path / 'laid',
                                      progress=False)
    assert torch.equal(perm, ref.perm) and torch.equal(ptr, ref.ptr)
    assert torch.equal(laid['x'], data.x[perm])
    with pytest.raises(FileExistsError, match="'output'"):
        lpmetis_spark(edges, 4, spark=spark, output=out)


def test_bad_input(spark):
    edge_index, _ = grid(4, 4)
    df = edges_frame(spark, edge_index)
    with pytest.raises(ValueError, match="lack the column"):
        lpmetis_spark(df.withColumnRenamed('dst', 'to'), 2, spark=spark)
    with pytest.raises(ValueError, match="out of range for 'num_nodes'"):
        lpmetis_spark(df, 2, num_nodes=10, spark=spark)
    with pytest.raises(PartitionInputError, match='non-negative'):
        lpmetis_spark(edges_frame(spark, edge_index,
                                  -torch.ones(edge_index.size(1))), 2,
                      spark=spark)
    with pytest.raises(ValueError, match="'num_parts'"):
        lpmetis_spark(df, 100, spark=spark)
    with pytest.raises(ValueError, match="'max_coarse_entries'"):
        lpmetis_spark(df, 2, spark=spark, max_coarse_entries=-1)
    with pytest.raises(ValueError, match="engine"):
        partition(edge_index, 2, method='lpmetis', engine='dask')
    with pytest.raises(ValueError, match="engine='spark'"):
        partition(edge_index, 2, method='metis', engine='spark')
    # Parts read back are checked:
    parts = spark.createDataFrame([(0, 0), (1, 1), (1, 0)],
                                  'node long, part long')
    with pytest.raises(ValueError, match='node 1 appears 2'):
        read_parts(parts, 2)
    with pytest.raises(ValueError, match="outside \\[0, 2\\)"):
        read_parts(spark.createDataFrame([(0, 0), (1, 5)],
                                         'node long, part long'), 2, 2)
    with pytest.raises(ValueError, match='lack the column'):
        read_parts(parts.drop('part'), 2)
