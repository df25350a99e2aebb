r"""LPMetis on Apache Spark: the rounds of
:func:`~torch_autoscale.partition.lpmetis` as DataFrame operations, for
graphs that no single machine holds.

Every step is the in-process one, on the building blocks of
:mod:`~torch_autoscale.partition.spark`: pruning
(:func:`~torch_autoscale.partition.spark.prune_entries`), synchronous
label propagation (:func:`~torch_autoscale.partition.spark.label_updates`)
and coarsening (:func:`~torch_autoscale.partition.spark.cluster_ids`,
:func:`~torch_autoscale.partition.spark.contract_entries`) for
:obj:`rounds` rounds; then the last coarse graph (at most
:obj:`max_coarse_entries` of its entries, every node's heaviest) is
collected to the driver and split by METIS, the parts are joined back to
the nodes and refined on the original graph. Random draws are hashes of
the seed and the node or edge and every sum runs in a fixed order, so the
partition is that
of :func:`~torch_autoscale.partition.lpmetis` for the same edges and seed,
bit for bit.

Only the coarse graph and one value per coarse node reach the driver; the
rest stays in Spark.
"""
import logging
import os
import os.path as osp
import time
import uuid
from typing import Optional

import torch
from torch import Tensor

from . import spark as sp
from .backend import partition_csr
from .lpmetis import (
    CoarseGraph,
    ACTIVE,
    IMBALANCE,
    PRUNE,
    REFINE,
    TIE,
    check_lpmetis_args,
    entries_per_node,
    stream_key,
)
from .validation import check_int

log = logging.getLogger(__name__)


def _coarse_csr(entries, num_nodes: int, max_entries: Optional[int]):
    r"""The symmetric entries :obj:`(row, col, weight)` on the driver as
    CSR arrays, columns sorted within rows: all of them, or, if there are
    more than :obj:`max_entries`, every node's heaviest, bit for bit as
    :func:`~torch_autoscale.partition.lpmetis.heaviest_entries` keeps
    them (ranked by weight, then the hash of the pair, then the column,
    within a window per row)."""
    F, Window = sp.F, sp.Window
    total = entries.count()
    if max_entries is not None and total > max_entries:
        k = entries_per_node(max_entries, num_nodes)
        ties = sp.with_hash_bits(
            entries.withColumn('lo', F.least('row', 'col')).withColumn(
                'hi', F.greatest('row', 'col')), stream_key(0, TIE), 'lo',
            'hi', 'tie')
        rank = F.row_number().over(Window.partitionBy('row').orderBy(
            F.desc('weight'), F.desc('tie'), F.asc('col')))
        top = ties.withColumn('rank', rank).where(F.col('rank') <= k)
        top = top.select('row', 'col')
        keep = top.union(top.select(F.col('col').alias('row'),
                                    F.col('row').alias('col'))).distinct()
        entries = entries.join(keep, ['row', 'col'])
        log.info("LPMetis (Spark): the coarse graph has %d entries, more "
                 "than 'max_coarse_entries' (%d); METIS gets the %d "
                 "heaviest of every node", total, max_entries, k)
    rows = entries.select('row', 'col', 'weight').orderBy('row',
                                                          'col').collect()
    row = torch.tensor([r[0] for r in rows], dtype=torch.long)
    col = torch.tensor([r[1] for r in rows], dtype=torch.long)
    weight = torch.tensor([r[2] for r in rows], dtype=torch.float32)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=num_nodes), 0,
                 out=rowptr[1:])
    return rowptr, col, weight


def _column(df, name: str, num_nodes: int) -> Tensor:
    r"""The :obj:`int64` column :obj:`name` of :obj:`df` indexed by its
    column :obj:`node` (every node once), on the driver."""
    out = torch.empty(num_nodes, dtype=torch.long)
    rows = df.select('node', name).collect()
    out[torch.tensor([r[0] for r in rows], dtype=torch.long)] = torch.tensor(
        [r[1] for r in rows], dtype=torch.long)
    return out


def lpmetis_spark(edges: sp.EdgeSource, num_parts: int,
                  num_nodes: Optional[int] = None, spark=None,
                  p_ratio: float = 0.5, p_b: float = 0.1, rounds: int = 2,
                  seed: Optional[int] = None, iterations: int = 5,
                  max_cluster_size: Optional[int] = None, refine: int = 4,
                  max_coarse_entries: Optional[int] = None,
                  output: Optional[str] = None, fmt: Optional[str] = None,
                  verbose: bool = True, return_coarse: bool = False):
    r"""Partitions a graph into :obj:`num_parts` parts via LPMetis on Spark
    (see :mod:`~torch_autoscale.partition.lpmetis_spark`): the same
    partition as :func:`~torch_autoscale.partition.lpmetis` gives for the
    same edges, seed and arguments.

    Args:
        edges (pyspark.sql.DataFrame or str): The edges, a DataFrame or the
            path of Parquet data or of a CSV file with a header, with the
            columns :obj:`src`, :obj:`dst` (integer node ids in
            :obj:`[0, num_nodes)`) and optionally :obj:`weight` (finite,
            non-negative), as
            :func:`~torch_autoscale.partition.spark.read_edges` reads them.
            Edges are undirected (an edge given in both directions gets the
            sum of both weights) and self-loops are ignored.
        num_parts (int): The number of parts, in :obj:`[1, num_nodes]`.
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, the largest id plus one)
        spark (pyspark.sql.SparkSession, optional): The session. (default:
            :obj:`None`, the active one or a new local one)
        p_ratio (float, optional): See
            :func:`~torch_autoscale.partition.lpmetis`.
            (default: :obj:`0.5`)
        p_b (float, optional): See
            :func:`~torch_autoscale.partition.lpmetis`.
            (default: :obj:`0.1`)
        rounds (int, optional): Label-propagation and coarsening rounds.
            (default: :obj:`2`)
        seed (int, optional): The seed of the draws. (default: :obj:`None`,
            drawn from PyTorch's global generator)
        iterations (int, optional): Label updates per round.
            (default: :obj:`5`)
        max_cluster_size (int, optional): The largest number of original
            nodes of a cluster. (default: :obj:`None`, as
            :func:`~torch_autoscale.partition.lpmetis`)
        refine (int, optional): Label updates on the original graph after
            METIS. (default: :obj:`4`)
        max_coarse_entries (int, optional): The most entries of the coarse
            graph collected to the driver for METIS (every node's heaviest,
            as :func:`~torch_autoscale.partition.lpmetis`).
            (default: :obj:`None`, all)
        output (str, optional): A path to write the parts to as Parquet
            (columns :obj:`node`, :obj:`part`); it must not exist. A local
            path is written to a temporary folder beside it and renamed
            into place when complete. (default: :obj:`None`)
        fmt (str, optional): The format of a path :obj:`edges`, see
            :func:`~torch_autoscale.partition.spark.read_edges`.
        verbose (bool, optional): Whether to log every round.
            (default: :obj:`True`)
        return_coarse (bool, optional): Whether to also return the coarse
            graph METIS split and every node's coarse node, collected to
            the driver as a
            :class:`~torch_autoscale.partition.lpmetis.CoarseGraph` (equal
            to that of :func:`~torch_autoscale.partition.lpmetis`; the
            node map costs one :obj:`int64` per node on the driver).
            (default: :obj:`False`)

    Returns:
        pyspark.sql.DataFrame: The part of every node, columns :obj:`node`
        and :obj:`part` (:obj:`bigint`), every id of :obj:`[0, num_parts)`
        in use; :func:`read_parts` turns it (or the Parquet output) into
        the tensor the rest of the library takes. With
        :obj:`return_coarse`, a tuple of it and the coarse graph.

    Raises:
        ValueError: If an argument is out of range, or a column is missing
            or holds ids out of range (the message names it).
        ~torch_autoscale.errors.PartitionInputError: If a weight is
            negative, NaN or infinite.
        FileExistsError: If :obj:`output` exists.
        ImportError: If :obj:`pyspark` is not installed.

    Example:
        >>> parts = lpmetis_spark('edges.parquet', num_parts=64, seed=0,
        ...                       output='parts.parquet')
        >>> cluster = read_parts('parts.parquet', num_nodes=n)
    """
    sp.require_pyspark()
    F, Window = sp.F, sp.Window
    t = time.perf_counter()
    spark = spark if spark is not None else sp.default_session()
    if output is not None:
        output = os.fspath(output)
        if osp.exists(output):
            raise FileExistsError(f"'output' {output!r} exists; remove it or "
                                  f"pick another path")
    if max_coarse_entries is not None:
        max_coarse_entries = check_int(max_coarse_entries,
                                       'max_coarse_entries', 0)
    df, n = sp.read_edges(edges, num_nodes, spark, fmt)
    num_nodes = n
    num_parts, rounds, iterations, max_cluster_size, refine, seed = \
        check_lpmetis_args(n, num_parts, p_ratio, p_b, rounds, iterations,
                           max_cluster_size, refine, seed)
    ids = spark.range(n).select(F.col('id').alias('node'))
    if num_parts == 1 and not return_coarse:
        return _finish(ids.withColumn('part', F.lit(0).cast('bigint')),
                       output)

    level0 = sp.checkpoint(sp.symmetric_entries(sp.undirected_edges(df)))
    degree = level0.groupBy(F.col('row').alias('node')).count()
    # `lpmetis.degree_rank`: by decreasing degree, ties by id.
    rank = sp.checkpoint(ids.join(degree, 'node', 'left').select(
        'node', (F.row_number().over(
            Window.orderBy(F.desc(F.coalesce('count', F.lit(0))), 'node'))
            - 1).alias('priority')))
    nodes = rank.select('node', F.col('priority').alias('label'),
                        F.lit(1).cast('bigint').alias('count'), 'priority')
    entries, merged, mapping = level0, None, None
    for r in range(rounds):
        key = stream_key(seed, r)
        pruned = sp.prune_entries(entries, float(p_ratio), float(p_b),
                                  stream_key(key, PRUNE), merged)
        nodes = sp.label_updates(pruned, nodes, max_cluster_size,
                                 iterations, stream_key(key, ACTIVE))
        clusters = sp.checkpoint(sp.cluster_ids(nodes.select('node',
                                                             'label')))
        size = clusters.agg(F.max('cluster')).first()[0] + 1
        if size == n:  # Nothing merged: coarsening is done.
            break
        n = size
        merged = clusters.groupBy(F.col('cluster').alias('node')).agg(
            F.count(F.lit(1)).cast('float').alias('merged'))
        count = nodes.join(clusters, 'node').groupBy(
            F.col('cluster').alias('node')).agg(
                F.sum('count').cast('bigint').alias('count'))
        if mapping is None:
            mapping = clusters.select(F.col('node').alias('orig'),
                                      F.col('cluster').alias('cur'))
        else:
            mapping = mapping.join(
                clusters.select(F.col('node').alias('cur'), 'cluster'),
                'cur').select('orig', F.col('cluster').alias('cur'))
        mapping = sp.checkpoint(mapping)
        entries = sp.checkpoint(sp.symmetric_entries(
            sp.contract_entries(entries, clusters)))
        merged = sp.checkpoint(merged)
        nodes = sp.checkpoint(count.select('node', F.col('node').alias(
            'label'), 'count'))
        if verbose:
            log.info("LPMetis (Spark) round %d: %d nodes, %d edges (%.2fs)",
                     r + 1, n, entries.count() // 2,
                     time.perf_counter() - t)

    # METIS on the driver, on the coarse graph (or its nodes' heaviest
    # entries):
    rowptr, col, weight = _coarse_csr(entries, n, max_coarse_entries)
    count = _column(nodes, 'count', n)
    if num_parts == 1:  # METIS needs two parts or more.
        coarse_part = torch.zeros(n, dtype=torch.long)
    else:
        coarse_part, _ = partition_csr(rowptr, col, num_parts, count,
                                       weight, False, n)
    kept: Optional[CoarseGraph] = None
    if return_coarse:
        node = torch.arange(num_nodes) if mapping is None else _column(
            mapping.select(F.col('orig').alias('node'), 'cur'), 'cur',
            num_nodes)
        kept = CoarseGraph(node, rowptr, col.long(), weight.float(), count,
                           coarse_part.clone())
    del rowptr, col, weight
    coarse = spark.createDataFrame(
        list(enumerate(coarse_part.tolist())), 'cur long, part long')
    if mapping is None:
        parts = coarse.select(F.col('cur').alias('node'), 'part')
    else:
        parts = mapping.join(coarse, 'cur').select(
            F.col('orig').alias('node'), 'part')
    parts = sp.checkpoint(parts)
    if refine > 0 and mapping is not None:
        largest = parts.groupBy('part').count().agg(F.max('count')).first()
        cap = max(IMBALANCE * num_nodes / num_parts, float(largest[0]))
        state = parts.join(rank, 'node').select(
            'node', F.col('part').alias('label'),
            F.lit(1).cast('bigint').alias('count'), 'priority')
        scores = level0.select('row', 'col', F.col('weight').alias('score'))
        state = sp.label_updates(scores, state, cap, refine,
                                 stream_key(seed, REFINE))
        parts = state.select('node', F.col('label').alias('part'))
    parts = sp.checkpoint(_fill_empty_parts(parts, num_parts))
    if verbose:
        log.info("LPMetis (Spark) split %d nodes into %d parts in %.2fs "
                 "(coarse graph: %d nodes)", num_nodes, num_parts,
                 time.perf_counter() - t, n)
    parts = _finish(parts, output)
    return (parts, kept) if return_coarse else parts


def _fill_empty_parts(parts, num_parts: int):
    r"""As :func:`~torch_autoscale.partition.lpmetis.fill_empty_parts`:
    for every empty part, the second half (by node id) of the largest part
    moves into it (a loop over empty parts, which are rare)."""
    F, Window = sp.F, sp.Window
    sizes = torch.zeros(num_parts, dtype=torch.long)
    for r in parts.groupBy('part').count().collect():
        sizes[r['part']] = r['count']
    for empty in (sizes == 0).nonzero().view(-1).tolist():
        largest = int(sizes.argmax())
        half = int(sizes[largest]) // 2
        position = F.row_number().over(Window.partitionBy('part')
                                       .orderBy('node')) - 1
        parts = sp.checkpoint(parts.withColumn('pos', position).select(
            'node', F.when((F.col('part') == largest)
                           & (F.col('pos') >= half),
                           F.lit(empty).cast('bigint'))
            .otherwise(F.col('part')).alias('part')))
        sizes[empty] = sizes[largest] - half
        sizes[largest] = half
    return parts


def _finish(parts, output: Optional[str]):
    if output is None:
        return parts
    if '://' in output:  # A cluster file system: Spark's own commit.
        parts.write.parquet(output, mode='errorifexists')
        return parts
    tmp = osp.join(osp.dirname(osp.abspath(output)),
                   f'.{osp.basename(output)}.tmp-{uuid.uuid4().hex}')
    try:
        parts.write.parquet(tmp)
        os.rename(tmp, output)
    finally:
        if osp.exists(tmp):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return parts


def read_parts(parts: sp.EdgeSource, num_nodes: int,
               num_parts: Optional[int] = None, spark=None) -> Tensor:
    r"""The part of every node as the :obj:`int64` tensor the rest of the
    library takes (:func:`~torch_autoscale.partition.sort_by_cluster`,
    :func:`~torch_autoscale.store.partition_store`), from the output of
    :func:`lpmetis_spark`: a DataFrame or the path of Parquet data with
    the columns :obj:`node` and :obj:`part`.

    Args:
        parts (pyspark.sql.DataFrame or str): The parts.
        num_nodes (int): The number of nodes.
        num_parts (int, optional): The number of parts, if known: every
            part id must lie below it. (default: :obj:`None`)
        spark (pyspark.sql.SparkSession, optional): The session that reads
            a path. (default: :obj:`None`, the active or a new local one)

    Raises:
        ValueError: If a column is missing, or a node is missing, repeated
            or out of range, or a part id is negative or not below
            :obj:`num_parts` (the message names it).
    """
    sp.require_pyspark()
    F = sp.F
    num_nodes = check_int(num_nodes, 'num_nodes', 1)
    if isinstance(parts, (str, os.PathLike)):
        spark = spark if spark is not None else sp.default_session()
        parts = spark.read.parquet(os.fspath(parts))
    missing = [c for c in ('node', 'part') if c not in parts.columns]
    if missing:
        raise ValueError(f"The parts lack the column(s) {missing} (columns: "
                         f"{parts.columns}); pass the output of "
                         f"lpmetis_spark")
    rows = parts.select(F.col('node').cast('bigint'),
                        F.col('part').cast('bigint')).collect()
    node = torch.tensor([r[0] for r in rows], dtype=torch.long)
    part = torch.tensor([r[1] for r in rows], dtype=torch.long)
    if node.numel() > 0 and (int(node.min()) < 0
                             or int(node.max()) >= num_nodes):
        raise ValueError(f"The parts name nodes outside [0, {num_nodes}) "
                         f"('num_nodes'); pass the number of nodes of the "
                         f"partitioned graph")
    seen = torch.bincount(node, minlength=num_nodes)
    if node.numel() != num_nodes or bool((seen != 1).any()):
        bad = int((seen != 1).nonzero()[0])
        raise ValueError(f"The parts must name every node of [0, "
                         f"{num_nodes}) once, but node {bad} appears "
                         f"{int(seen[bad])} time(s)")
    if part.numel() > 0 and (int(part.min()) < 0 or (
            num_parts is not None and int(part.max()) >= num_parts)):
        raise ValueError(f"The parts hold part ids outside [0, "
                         f"{num_parts}); pass the partition's 'num_parts'")
    out = torch.empty(num_nodes, dtype=torch.long)
    out[node] = part
    return out
