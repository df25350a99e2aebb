r"""The Spark engine of LPMetis: its building blocks on PySpark DataFrames.

:func:`~torch_autoscale.partition.lpmetis` draws every random number as a
counter-based hash (SplitMix64's finalizer) of the seed, the round, the
iteration, what the draw is for and the node or directed edge
(:func:`~torch_autoscale.partition.lpmetis.hash_bits`), so that another
engine can draw the same numbers without sharing a generator. This module
computes those draws, and the first steps of a round, on Spark DataFrames,
bit for bit as the in-process functions do:

* :func:`read_edges` reads an edge list (a DataFrame, or a Parquet or CSV
  path, with columns :obj:`src`, :obj:`dst` and an optional
  :obj:`weight`) and validates it, with errors that name the column and the
  fix;
* :func:`with_hash_bits` and :func:`with_hash_uniform` add the draws of
  :func:`~torch_autoscale.partition.lpmetis.hash_bits` and
  :func:`~torch_autoscale.partition.lpmetis.hash_uniform` as a column;
  :func:`uniform_below` and :func:`bits_to_uniform` read them;
* :func:`undirected_edges` builds the graph LPMetis partitions (self-loops
  dropped, copies of an edge merged, weights divided by the largest), as
  :func:`~torch_autoscale.partition.lpmetis.undirected_csr` does;
* :func:`prune_entries` keeps the edges of one round as
  :func:`~torch_autoscale.partition.lpmetis.prune_block` does;
* :func:`checkpoint` computes a DataFrame once and cuts both its lineage
  and Spark's size estimate of it, which iterated joins would otherwise
  raise to a power in every iteration.

Spark 4 runs SQL in ANSI mode, where a 64-bit product or sum that
overflows raises an error instead of wrapping. The hash needs wrapping
64-bit arithmetic, so :func:`wrapping_add` and :func:`wrapping_mul` build it
from products and sums of 16- and 32-bit pieces that never overflow, and
shifts and bitwise operations (which never raise): the same bits in ANSI
and legacy mode, on Spark 3.5 and 4, and in Spark Connect.

:obj:`pyspark` is an optional dependency (``pip install
torch_autoscale[spark]``, and Java 17): :obj:`WITH_PYSPARK` tells whether it
is importable, and every function raises :class:`ImportError` with the fix
when it is not.
"""
import itertools
import logging
import math
import os
from typing import Any, Optional, Tuple, Union

log = logging.getLogger(__name__)

try:  # An optional dependency: probed once, here.
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    WITH_PYSPARK = True
except ImportError:  # pragma: no cover - depends on the environment
    Column = DataFrame = SparkSession = Any  # type: ignore
    WITH_PYSPARK = False

# SplitMix64's constants, as in `torch_autoscale.partition.lpmetis` (the
# tests check that both engines give the same bits):
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

_MASK16 = (1 << 16) - 1
_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_FLOAT32_TINY = 1.1754943508222875e-38  # The smallest normal float32.
_counter = itertools.count()

EdgeSource = Union['DataFrame', str, 'os.PathLike[str]']
r"""What :func:`read_edges` takes: a DataFrame, or the path of a Parquet
file or folder or of a CSV file with a header line."""


def require_pyspark() -> None:
    r"""Raises :class:`ImportError` with the fix if :obj:`pyspark` is not
    installed."""
    if not WITH_PYSPARK:
        raise ImportError("The Spark engine of LPMetis needs 'pyspark' (and "
                          "Java 17); install it with 'pip install "
                          "torch_autoscale[spark]'")


SQL = str
r"""A Spark SQL expression as text (*e.g.*, a column name in backquotes):
the 64-bit arithmetic below builds text, so that a hash is one expression
per step, not a hundred calls into the JVM."""


def _sql(x: Union[SQL, int]) -> SQL:
    if isinstance(x, int):  # Only non-negative literals below 2^63 here.
        return f'{x}L'
    return f'({x})'


def _low32(z: SQL) -> SQL:
    return f'({_sql(z)} & {_MASK32}L)'


def _high32(z: SQL) -> SQL:
    return f'shiftrightunsigned({z}, 32)'


def wrapping_add_sql(a: SQL, b: Union[SQL, int]) -> SQL:
    r"""The 64-bit sum :obj:`a + b` wrapped to two's complement, as
    :obj:`int64` tensors add, in any SQL mode: the 32-bit halves are summed
    (at most :math:`2^{34}`, no overflow) and the carry shifted in.

    Args:
        a (str): A :obj:`bigint` Spark SQL expression (*e.g.*, a quoted
            column name).
        b (str or int): Another one, or an integer (taken modulo
            :math:`2^{64}`).
    """
    if isinstance(b, int):
        b &= _MASK64
        b_low, b_high = _sql(b & _MASK32), _sql(b >> 32)
    else:
        b_low, b_high = _low32(b), _high32(b)
    low = f'({_low32(a)} + {b_low})'
    high = f'({_high32(a)} + {b_high} + shiftrightunsigned({low}, 32))'
    return f'(shiftleft({high}, 32) | {_low32(low)})'


def wrapping_mul_sql(a: SQL, factor: int) -> SQL:
    r"""The 64-bit product :obj:`a * factor` wrapped to two's complement,
    as :obj:`int64` tensors multiply, in any SQL mode. With
    :math:`a = a_h 2^{32} + a_l` and :math:`c = c_h 2^{32} + c_l`, the
    product modulo :math:`2^{64}` is :math:`a_l c_l + 2^{32} (a_h c_l +
    a_l c_h)`; each product of a 16-bit piece of :math:`a` by a 32-bit
    one of :math:`c` is below :math:`2^{48}`, and only the low 32 bits of
    the second term matter.

    :obj:`a` occurs several times in the result: pass a column name (or
    a small expression), not a deep expression.

    Args:
        a (str): A :obj:`bigint` Spark SQL expression.
        factor (int): The factor (taken modulo :math:`2^{64}`).
    """
    factor &= _MASK64
    c_lo, c_hi = _sql(factor & _MASK32), _sql(factor >> 32)
    a = _sql(a)
    a0 = f'({a} & {_MASK16}L)'  # The 16-bit pieces of a, low to high.
    a1 = f'(shiftrightunsigned({a}, 16) & {_MASK16}L)'
    a2 = f'(shiftrightunsigned({a}, 32) & {_MASK16}L)'
    a3 = f'shiftrightunsigned({a}, 48)'
    # a_l * c_l, all 64 bits: a0 c_l + (a1 c_l << 16), wrapping.
    low = wrapping_add_sql(f'{a0} * {c_lo}', f'shiftleft({a1} * {c_lo}, 16)')
    # (a_h c_l + a_l c_h) mod 2^32, from pieces below 2^48:
    cross = ' + '.join([_low32(f'{a2} * {c_lo}'),
                        _low32(f'shiftleft({a3} * {c_lo}, 16)'),
                        _low32(f'{a0} * {c_hi}'),
                        _low32(f'shiftleft({a1} * {c_hi}, 16)')])
    return wrapping_add_sql(low, f'shiftleft({cross}, 32)')


def wrapping_add(a: SQL, b: Union[SQL, int]) -> 'Column':
    r"""The column of :func:`wrapping_add_sql` (same arguments)."""
    require_pyspark()
    return F.expr(wrapping_add_sql(a, b))


def wrapping_mul(a: SQL, factor: int) -> 'Column':
    r"""The column of :func:`wrapping_mul_sql` (same arguments)."""
    require_pyspark()
    return F.expr(wrapping_mul_sql(a, factor))


def _temp() -> str:
    return f'__lpmetis_{next(_counter)}'


def _quote(name: str) -> SQL:
    return '`' + name.replace('`', '``') + '`'


def _xorshift(z: SQL, shift: int) -> SQL:
    return f'({z} ^ shiftrightunsigned({z}, {shift}))'


def _mix_steps(z: SQL, names: Tuple[str, str, str]) -> list:
    r"""The steps :obj:`(name, expression)` of SplitMix64's finalizer of
    :obj:`z`, the last one named :obj:`names[2]`."""
    first = wrapping_mul_sql(_xorshift(z, 30), MIX1)
    second = wrapping_mul_sql(_xorshift(_quote(names[0]), 27), MIX2)
    return [(names[0], first), (names[1], second),
            (names[2], _xorshift(_quote(names[1]), 31))]


def _run_steps(df: 'DataFrame', steps: list, out: str) -> 'DataFrame':
    r"""Adds the columns of :obj:`steps`, one projection each, and keeps
    the last one as :obj:`out` (the input's columns stay)."""
    keep = [c for c in df.columns if c != out]
    for name, expr in steps:
        df = df.select('*', F.expr(expr).alias(name))
    # Non-deterministic (plus zero times the partition id): otherwise
    # Spark's optimizer pushes a filter on the result down through the
    # projections, substituting every step into the next, and the
    # expression grows exponentially (out of memory while compiling).
    last = F.col(_quote(steps[-1][0])) + F.spark_partition_id() * 0
    return df.select(*[F.col(_quote(c)) for c in keep],
                     last.cast('bigint').alias(out))


def with_mix64(df: 'DataFrame', z: SQL, out: str) -> 'DataFrame':
    r"""Adds the column :obj:`out`, SplitMix64's finalizer of the
    :obj:`bigint` :obj:`z`, bit for bit as
    :func:`~torch_autoscale.partition.lpmetis.mix64`. Every step is a
    projection of its own, so the plan stays small.

    Args:
        df (pyspark.sql.DataFrame): The rows.
        z (str): A column name or a Spark SQL expression
            (:obj:`bigint`).
        out (str): The name of the new column.
    """
    require_pyspark()
    z = _quote(z) if z in df.columns else _sql(z)
    names = (_temp(), _temp(), _temp())
    return _run_steps(df, _mix_steps(z, names), out)


def with_hash_bits(df: 'DataFrame', key: int, a: SQL,
                   b: Optional[SQL] = None,
                   out: str = 'bits') -> 'DataFrame':
    r"""Adds the column :obj:`out` of counter-based random bits: the
    64-bit hash of the stream :obj:`key` and the ids :obj:`a` (or the
    pairs :obj:`(a, b)`), bit for bit as
    :func:`~torch_autoscale.partition.lpmetis.hash_bits`:
    :math:`h = m(m(a + k) \oplus b + \gamma)`.

    Args:
        df (pyspark.sql.DataFrame): The rows.
        key (int): A stream key from
            :func:`~torch_autoscale.partition.lpmetis.stream_key`.
        a (str): The column of node ids (:obj:`bigint`), or a Spark SQL
            expression.
        b (str, optional): The column of the second ids of pairs.
            (default: :obj:`None`)
        out (str, optional): The name of the new column.
            (default: :obj:`"bits"`)
    """
    require_pyspark()

    def ref(x: SQL) -> SQL:
        return _quote(x) if x in df.columns else _sql(x)

    start = _temp()
    steps = [(start, wrapping_add_sql(f'CAST({ref(a)} AS BIGINT)', key))]
    names = (_temp(), _temp(), _temp())
    steps += _mix_steps(_quote(start), names)
    if b is not None:
        pair = _temp()
        steps.append((pair, wrapping_add_sql(
            f'({_quote(names[2])} ^ CAST({ref(b)} AS BIGINT))', GOLDEN)))
        steps += _mix_steps(_quote(pair), (_temp(), _temp(), _temp()))
    return _run_steps(df, steps, out)


def bits_to_uniform(bits: 'Column') -> 'Column':
    r"""The :obj:`double` draws in :math:`[0, 1)` of the hashes
    :obj:`bits` (their 53 high bits times :math:`2^{-53}`), as
    :func:`~torch_autoscale.partition.lpmetis.bits_to_uniform`.

    Args:
        bits (pyspark.sql.Column): Hashes from :func:`with_hash_bits`.
    """
    return F.shiftrightunsigned(bits, 11).cast('double') * F.lit(2.0**-53)


def uniform_below(bits: 'Column', p: float) -> 'Column':
    r"""Whether the draws of :obj:`bits` are below :obj:`p`, in integers,
    as :func:`~torch_autoscale.partition.lpmetis.uniform_below`.

    Args:
        bits (pyspark.sql.Column): Hashes from :func:`with_hash_bits`.
        p (float): The probability.
    """
    bound = math.ceil(p * 2.0**53)
    return F.shiftrightunsigned(bits, 11) < F.lit(bound).cast('bigint')


def with_hash_uniform(df: 'DataFrame', key: int, a: SQL,
                      b: Optional[SQL] = None,
                      out: str = 'u') -> 'DataFrame':
    r"""Adds the column :obj:`out` of uniform draws in :math:`[0, 1)`
    (:obj:`double`), bit for bit as
    :func:`~torch_autoscale.partition.lpmetis.hash_uniform` (see
    :func:`with_hash_bits` for the arguments)."""
    bits = _temp()
    df = with_hash_bits(df, key, a, b, bits)
    return df.withColumn(out, bits_to_uniform(F.col(bits))).drop(bits)


def default_session() -> 'SparkSession':
    r"""The active :class:`~pyspark.sql.SparkSession`, or a new local one
    (all cores, Spark's UI off) if there is none."""
    require_pyspark()
    spark = SparkSession.getActiveSession()
    if spark is None:
        spark = (SparkSession.builder.master('local[*]')
                 .appName('torch_autoscale')
                 .config('spark.ui.enabled', 'false').getOrCreate())
    return spark


def checkpoint(df: 'DataFrame') -> 'DataFrame':
    r"""Computes :obj:`df` once and returns it as a new leaf of the plan:
    its rows, without its lineage and without its size estimate.

    :meth:`~pyspark.sql.DataFrame.localCheckpoint` cuts the lineage but,
    since Spark 3.4 (SPARK-39834), keeps the optimizer's size estimate of
    the plan it cuts, and Spark estimates an inner or outer join as the
    *product* of its inputs' sizes. An iterative algorithm that joins its
    checkpointed state with itself and checkpoints the result raises the
    estimate to a power every iteration: LPMetis' label updates over a
    thousand nodes carried estimates of millions of digits after a dozen
    iterations, and the driver spent minutes and gigabytes multiplying
    them (planning alone, not the data). Here the rows are handed to a new
    DataFrame (:obj:`createDataFrame` of the JVM's rows, no Python in
    between) before the checkpoint, so the estimate starts afresh, at
    Spark's default size for data of unknown size: joins on checkpointed
    frames are planned as for data of unknown size (shuffled, not
    broadcast), however often they are iterated.

    Partitions and the order of rows within them are kept. Under Spark
    Connect (no JVM handle on the client) this is
    :meth:`~pyspark.sql.DataFrame.localCheckpoint`.

    Args:
        df (pyspark.sql.DataFrame): The rows.
    """
    require_pyspark()
    jdf = getattr(df, '_jdf', None)
    if jdf is None:  # pragma: no cover - Spark Connect
        return df.localCheckpoint()
    spark = df.sparkSession
    fresh = spark._jsparkSession.createDataFrame(jdf.javaRDD(), jdf.schema())
    return type(df)(fresh, spark).localCheckpoint()


_INTEGRAL = ('tinyint', 'smallint', 'int', 'bigint')


def _id_column(df: 'DataFrame', name: str) -> 'Column':
    dtype = df.schema[name].dataType.simpleString()
    if dtype in _INTEGRAL:
        return F.col(name).cast('bigint')
    if dtype == 'string':  # CSV: parsed; what does not parse is null.
        return F.expr(f'try_cast(`{name}` AS BIGINT)')
    raise ValueError(f"Column '{name}' of the edges must hold integer node "
                     f"ids (got type {dtype}); cast it, e.g., "
                     f"'df.withColumn(\"{name}\", df[\"{name}\"]"
                     f".cast(\"bigint\"))'")


def _weight_column(df: 'DataFrame') -> 'Column':
    dtype = df.schema['weight'].dataType
    if isinstance(dtype, T.StringType):  # CSV.
        return F.expr('try_cast(`weight` AS DOUBLE)')
    if isinstance(dtype, (T.NumericType, T.BooleanType)):
        return F.col('weight').cast('double')
    raise ValueError(f"Column 'weight' of the edges must be numeric (got "
                     f"type {dtype.simpleString()}); cast it to double or "
                     f"drop it for an unweighted graph")


def read_edges(edges: EdgeSource, num_nodes: Optional[int] = None,
               spark: Optional['SparkSession'] = None,
               fmt: Optional[str] = None) -> Tuple['DataFrame', int]:
    r"""Reads and validates an edge list for the Spark engine: returns a
    DataFrame with the :obj:`bigint` columns :obj:`src` and :obj:`dst`
    and, if the input has one, the :obj:`double` column :obj:`weight`,
    in the order of the input, together with the number of nodes.

    Validation is one pass over the edges (an aggregation); the DataFrame
    is returned unevaluated otherwise.

    Args:
        edges (pyspark.sql.DataFrame or str or os.PathLike): The edges: a
            DataFrame, or the path of Parquet data or of a CSV file with a
            header line, with the columns :obj:`src` and :obj:`dst`
            (integer node ids in :obj:`[0, num_nodes)`) and optionally
            :obj:`weight` (finite, non-negative); other columns are
            ignored.
        num_nodes (int, optional): The number of nodes; the largest id
            plus one if :obj:`None`. (default: :obj:`None`)
        spark (pyspark.sql.SparkSession, optional): The session that reads
            a path. (default: :obj:`None`, :func:`default_session`)
        fmt (str, optional): :obj:`"parquet"` or :obj:`"csv"`, for a path.
            (default: :obj:`None`, :obj:`"csv"` for a path ending in
            :obj:`.csv`, else :obj:`"parquet"`)

    Raises:
        ValueError: If a column is missing or of the wrong type, if a node
            id is missing, not an integer, negative or not below
            :obj:`num_nodes`, or if there are no edges and no
            :obj:`num_nodes` (the message names the column and the fix).
        ~torch_autoscale.errors.PartitionInputError: If a weight is
            missing, negative, NaN or infinite.
        ImportError: If :obj:`pyspark` is not installed.
    """
    from torch_autoscale.errors import PartitionInputError
    from torch_autoscale.utils.checks import check_int

    require_pyspark()
    if num_nodes is not None:
        num_nodes = check_int(num_nodes, 'num_nodes', 0)
    if isinstance(edges, (str, os.PathLike)):
        path = os.fspath(edges)
        if fmt is None:
            fmt = 'csv' if path.lower().endswith('.csv') else 'parquet'
        if fmt not in ('parquet', 'csv'):
            raise ValueError(f"'fmt' must be 'parquet' or 'csv' (got "
                             f"'{fmt}')")
        spark = spark if spark is not None else default_session()
        if fmt == 'csv':
            edges = spark.read.csv(path, header=True)
        else:
            edges = spark.read.parquet(path)
    elif not isinstance(edges, DataFrame):
        raise ValueError(f"'edges' must be a Spark DataFrame or the path of "
                         f"Parquet or CSV data (got an object of type "
                         f"'{type(edges).__name__}')")
    missing = [c for c in ('src', 'dst') if c not in edges.columns]
    if missing:
        raise ValueError(f"The edges lack the column(s) {missing} (columns: "
                         f"{edges.columns}); name the endpoints 'src' and "
                         f"'dst', e.g., via "
                         f"'df.withColumnsRenamed({{...}})'")
    weighted = 'weight' in edges.columns
    cols = [_id_column(edges, 'src').alias('src'),
            _id_column(edges, 'dst').alias('dst')]
    if weighted:
        cols.append(_weight_column(edges).alias('weight'))
    df = edges.select(*cols)

    checks = [F.count(F.lit(1)).alias('num_edges')]
    for c in ('src', 'dst'):
        checks += [F.min(c).alias(f'min_{c}'), F.max(c).alias(f'max_{c}'),
                   F.count_if(F.col(c).isNull()).alias(f'null_{c}')]
    if weighted:
        w = F.col('weight')
        checks += [
            F.count_if(w.isNull()).alias('null_weight'),
            F.count_if(F.isnan(w) | (F.abs(w) == float('inf')))
            .alias('inf_weight'),
            F.count_if(w < 0).alias('neg_weight'),
        ]
    stats = df.agg(*checks).first().asDict()

    for c in ('src', 'dst'):
        if stats[f'null_{c}'] > 0:
            raise ValueError(f"Column '{c}' of the edges holds "
                             f"{stats[f'null_{c}']} missing or non-integer "
                             f"value(s); every edge needs two integer node "
                             f"ids, so drop or fix those rows")
    if stats['num_edges'] > 0:
        for c in ('src', 'dst'):
            if stats[f'min_{c}'] < 0:
                raise ValueError(f"Column '{c}' of the edges holds negative "
                                 f"node ids (smallest {stats[f'min_{c}']}); "
                                 f"ids must lie in [0, num_nodes), so "
                                 f"renumber the nodes")
        largest = max(stats['max_src'], stats['max_dst'])
        if num_nodes is None:
            num_nodes = largest + 1
        for c in ('src', 'dst'):
            if stats[f'max_{c}'] >= num_nodes:
                raise ValueError(f"Column '{c}' of the edges holds node id "
                                 f"{stats[f'max_{c}']}, out of range for "
                                 f"'num_nodes' ({num_nodes}); pass "
                                 f"'num_nodes >= {largest + 1}' or "
                                 f"renumber the nodes")
    elif num_nodes is None:
        raise ValueError("The edges are empty, so the number of nodes is "
                         "unknown; pass 'num_nodes'")
    if num_nodes == 0:
        raise ValueError("The graph has no nodes; pass 'num_nodes > 0'")
    if weighted:
        if stats['null_weight'] > 0:
            raise PartitionInputError(
                f"Column 'weight' of the edges holds {stats['null_weight']} "
                f"missing or non-numeric value(s); fill them (e.g., "
                f"'df.fillna({{\"weight\": 1.0}})') or drop the column")
        if stats['inf_weight'] > 0:
            raise PartitionInputError(
                f"Column 'weight' of the edges must be finite, but holds "
                f"{stats['inf_weight']} NaN or infinite value(s); replace "
                f"them, e.g., via 'df.fillna' and 'F.least'")
        if stats['neg_weight'] > 0:
            raise PartitionInputError(
                f"Column 'weight' of the edges must be non-negative, but "
                f"holds {stats['neg_weight']} negative value(s); METIS "
                f"cannot use them, so clip them, e.g., via "
                f"'F.greatest(\"weight\", F.lit(0.0))'")
    return df, num_nodes


def undirected_edges(edges: 'DataFrame') -> 'DataFrame':
    r"""The graph LPMetis partitions, as
    :func:`~torch_autoscale.partition.lpmetis.undirected_csr` builds it,
    from edges read by :func:`read_edges`: self-loops dropped, the copies
    of an edge (in either direction) merged, their weights summed in
    :obj:`double` (or counted, unweighted), divided by the largest sum and
    rounded to :obj:`float` (a positive weight too small for it becomes its
    smallest normal value), edges of weight zero dropped.

    The copies of an edge are summed in the order of the DataFrame (its
    partitions in order, and the rows of each in order), as
    :func:`~torch_autoscale.partition.lpmetis.lpmetis` sums them in the
    order of :obj:`edge_index`; with at most two copies (an edge given in
    both directions) the order does not matter.

    Returns a DataFrame of the columns :obj:`lo < hi` (:obj:`bigint`) and
    :obj:`weight` (:obj:`float`), one row per undirected edge.

    Args:
        edges (pyspark.sql.DataFrame): Edges from :func:`read_edges`.
    """
    require_pyspark()
    weighted = 'weight' in edges.columns
    df = edges.withColumn('pos', F.monotonically_increasing_id())
    df = df.where(F.col('src') != F.col('dst')).select(
        F.least('src', 'dst').alias('lo'),
        F.greatest('src', 'dst').alias('hi'), 'pos',
        *(['weight'] if weighted else []))
    if weighted:  # Summed in the order of the entries:
        copies = F.array_sort(F.collect_list(F.struct('pos', 'weight')))
        total = F.aggregate(copies, F.lit(0.0).cast('double'),
                            lambda acc, x: acc + x['weight'])
    else:
        total = F.count(F.lit(1)).cast('double')
    df = df.groupBy('lo', 'hi').agg(total.alias('total'))
    largest = df.agg(F.max('total')).first()[0]
    total = F.col('total')
    if largest is not None and largest > 0:
        total = total / F.lit(float(largest))
    weight = total.cast('float')
    tiny = F.lit(_FLOAT32_TINY).cast('float')
    weight = F.when((total > 0) & (weight < tiny), tiny).otherwise(weight)
    return (df.select('lo', 'hi', weight.alias('weight'))
            .where(F.col('weight') > 0))


def symmetric_entries(graph: 'DataFrame') -> 'DataFrame':
    r"""Both directions of the undirected edges :obj:`(lo, hi, weight)`
    of :func:`undirected_edges`: the entries :obj:`(row, col, weight)` of
    the symmetric CSR that
    :func:`~torch_autoscale.partition.lpmetis.symmetric_csr` builds.

    Args:
        graph (pyspark.sql.DataFrame): Undirected edges.
    """
    require_pyspark()
    forward = graph.select(F.col('lo').alias('row'),
                           F.col('hi').alias('col'), 'weight')
    backward = graph.select(F.col('hi').alias('row'),
                            F.col('lo').alias('col'), 'weight')
    return forward.unionByName(backward)


def _float_div(a: 'Column', b: 'Column') -> 'Column':
    # A float32 quotient: Spark divides in double, and a double quotient of
    # two floats rounded to float is the float quotient (53 >= 2 * 24 + 2).
    return (a.cast('double') / b.cast('double')).cast('float')


def prune_entries(entries: 'DataFrame', p_ratio: float, p_b: float,
                  key: int,
                  merged: Optional['DataFrame'] = None) -> 'DataFrame':
    r"""The entries that one round of LPMetis keeps, as
    :func:`~torch_autoscale.partition.lpmetis.prune_block` keeps them: an
    entry :obj:`v -> w` stays if its relative weight :math:`e_{vw} /
    \sum_m e_{vm}` is at least :obj:`p_ratio`, if its draw (the hash of
    :obj:`(v, w)` under :obj:`key`) is below :obj:`p_b`, or if it is the
    strongest entry of its row (the one with the smallest hash among ties).
    Every sum and quotient is in :obj:`float`, a row's sum in the order of
    its columns, as in the in-process engine.

    Returns a DataFrame of the kept entries :obj:`(row, col, score)`, with
    :math:`\text{score} = e_{vw} / s_w` (:obj:`float`).

    Args:
        entries (pyspark.sql.DataFrame): The entries :obj:`(row, col,
            weight)` of a symmetric graph (:func:`symmetric_entries`), one
            per neighbour, :obj:`weight` a positive :obj:`float`.
        p_ratio (float): The relative weight that always keeps an entry.
        p_b (float): The probability of keeping any other entry.
        key (int): The round's pruning stream key,
            :obj:`stream_key(stream_key(seed, round), PRUNE)`.
        merged (pyspark.sql.DataFrame, optional): The columns
            :obj:`(node, merged)`: the number :math:`s_w` of nodes of the
            previous level merged into every node (:obj:`float`).
            (default: :obj:`None`, all ones)
    """
    require_pyspark()
    row = Window.partitionBy('row')
    # A row's weights summed in the order of its columns, in float:
    sums = entries.groupBy('row').agg(F.aggregate(
        F.array_sort(F.collect_list(F.struct('col', 'weight'))),
        F.lit(0.0).cast('float'),
        lambda acc, x: (acc + x['weight']).cast('float')).alias('degree'))
    df = entries.join(sums, 'row')
    df = df.withColumn('rel', _float_div(F.col('weight'), F.col('degree')))
    df = with_hash_bits(df, key, 'row', 'col', 'bits')
    df = df.withColumn('tie', F.col('rel') == F.max('rel').over(row))
    df = df.withColumn('first', F.min(F.when(F.col('tie'), F.col('bits')))
                       .over(row))
    threshold = F.lit(float(p_ratio)).cast('float')
    keep = ((F.col('rel') >= threshold) | uniform_below(F.col('bits'), p_b)
            | (F.col('tie') & (F.col('bits') == F.col('first'))))
    df = df.where(keep)
    if merged is None:
        score = F.col('weight')
    else:
        df = df.join(merged.select(F.col('node').alias('col'), 'merged'),
                     'col')
        score = _float_div(F.col('weight'), F.col('merged'))
    return df.select('row', 'col', score.cast('float').alias('score'))


def cluster_ids(labels: 'DataFrame') -> 'DataFrame':
    r"""The clusters of the labels :obj:`(node, label)`, as
    :obj:`torch.unique(label, return_inverse=True)` numbers them in
    :func:`~torch_autoscale.partition.lpmetis.run_lpmetis`: the rank of
    every node's label among the distinct labels, in increasing order.
    Returns the columns :obj:`(node, cluster)` (:obj:`bigint`).

    The ranks come from one window over the distinct labels, which Spark
    computes in one partition: fine for the labels of a coarse level, a
    bottleneck for billions of distinct labels.

    Args:
        labels (pyspark.sql.DataFrame): The columns :obj:`node` and
            :obj:`label` (integers).
    """
    require_pyspark()
    ranks = labels.select('label').distinct().select(
        'label', (F.dense_rank().over(Window.orderBy('label')) - 1)
        .cast('bigint').alias('cluster'))
    return labels.join(ranks, 'label').select('node', 'cluster')


def contract_entries(entries: 'DataFrame',
                     clusters: 'DataFrame') -> 'DataFrame':
    r"""The graph of the clusters, as
    :func:`~torch_autoscale.partition.lpmetis.contract` builds it: one
    edge :obj:`(lo, hi)` per pair of adjacent clusters, weighing the sum
    (in :obj:`double`, rounded to :obj:`float`) of the weights of the
    entries :obj:`u -> v` with :obj:`u` in cluster :obj:`lo`, :obj:`v` in
    :obj:`hi`, :obj:`lo < hi`, summed in the order of the entries (by
    :obj:`u`, then :obj:`v`), as in the in-process engine. Returns the
    columns :obj:`(lo, hi, weight)` of :func:`undirected_edges`.

    Args:
        entries (pyspark.sql.DataFrame): The entries :obj:`(row, col,
            weight)` of a symmetric graph (:func:`symmetric_entries`).
        clusters (pyspark.sql.DataFrame): The cluster of every node
            :obj:`(node, cluster)` (:func:`cluster_ids`).
    """
    require_pyspark()
    of_row = clusters.select(F.col('node').alias('row'),
                             F.col('cluster').alias('lo'))
    of_col = clusters.select(F.col('node').alias('col'),
                             F.col('cluster').alias('hi'))
    df = entries.join(of_row, 'row').join(of_col, 'col')
    df = df.where(F.col('lo') < F.col('hi'))
    total = F.aggregate(
        F.array_sort(F.collect_list(F.struct('row', 'col', 'weight'))),
        F.lit(0.0).cast('double'),
        lambda acc, x: acc + x['weight'].cast('double'))
    return df.groupBy('lo', 'hi').agg(
        total.cast('float').alias('weight'))


def _fits(total: 'Column', cap: Union[int, float]) -> 'Column':
    # As in torch: an integer cap compares exactly, a float one in float32
    # (an int64 tensor against a Python float computes in float32).
    if isinstance(cap, int):
        return total <= F.lit(cap).cast('bigint')
    return total.cast('float') <= F.lit(float(cap)).cast('float')


def label_updates(entries: 'DataFrame', nodes: 'DataFrame',
                  cap: Union[int, float], iterations: int,
                  key: int) -> 'DataFrame':
    r"""Synchronous label updates, as
    :func:`~torch_autoscale.partition.lpmetis.label_rounds` makes them:
    in every iteration, a random half of the nodes (the hash of the node
    under :obj:`stream_key(key, iteration)` below :math:`0.5`) proposes
    the label of largest total score over its entries among the labels
    not full (the label's size plus the node's count within :obj:`cap`)
    or its own, its own label on ties, else the smallest; then every label
    admits its movers in the order of :obj:`priority` (or of node ids)
    while its size stays within :obj:`cap`. Scores are summed in
    :obj:`float`, in the order of a node's neighbours.

    The inputs and every iteration are checkpointed (:func:`checkpoint`),
    so neither the plan nor its size estimate grows with the iterations,
    and inputs with a long lineage are computed once.

    Args:
        entries (pyspark.sql.DataFrame): The kept entries :obj:`(row, col,
            score)` (:func:`prune_entries`).
        nodes (pyspark.sql.DataFrame): The columns :obj:`node`,
            :obj:`label`, :obj:`count` (original nodes per node) and
            optionally :obj:`priority` (distinct integers).
        cap (int or float): The largest label size.
        iterations (int): The number of updates.
        key (int): The stream key of the updates (:obj:`stream_key(
            round_key, ACTIVE)`).

    Returns:
        pyspark.sql.DataFrame: :obj:`nodes` with the new labels.
    """
    from torch_autoscale.partition.lpmetis import stream_key

    require_pyspark()
    order = 'priority' if 'priority' in nodes.columns else 'node'
    columns = nodes.columns
    if iterations > 0:  # Read in every iteration: computed once.
        entries = checkpoint(entries.select('row', 'col', 'score'))
        nodes = checkpoint(nodes)
    for it in range(iterations):
        state = with_hash_bits(nodes, stream_key(key, it), 'node', out='h')
        state = state.where(uniform_below(F.col('h'), 0.5)).select(
            F.col('node').alias('row'), F.col('label').alias('own'),
            F.col('count').alias('ncount'))
        size = nodes.groupBy(F.col('label').alias('lab')).agg(
            F.sum('count').alias('size'))
        df = entries.join(state, 'row').join(
            nodes.select(F.col('node').alias('col'),
                         F.col('label').alias('lab')), 'col')
        df = df.groupBy('row', 'lab', 'own', 'ncount').agg(F.aggregate(
            F.array_sort(F.collect_list(F.struct('col', 'score'))),
            F.lit(0.0).cast('float'),
            lambda acc, x: (acc + x['score']).cast('float')).alias('total'))
        df = df.join(size, 'lab')
        stay = F.col('lab') == F.col('own')
        allowed = stay | _fits(F.col('size') + F.col('ncount'), cap)
        df = df.select('row', 'lab', stay.alias('stay'),
                       allowed.alias('allowed'),
                       F.when(allowed, F.col('total'))
                       .otherwise(F.lit(-1.0).cast('float')).alias('total'))
        row = Window.partitionBy('row')
        is_best = F.col('allowed') & (F.col('total')
                                      == F.max('total').over(row))
        df = df.withColumn('best', is_best)
        keeps = F.max((F.col('best') & F.col('stay')).cast('int')).over(row)
        df = df.withColumn('cand', F.col('best') & (keeps == 0))
        movers = df.where('cand').groupBy(F.col('row').alias('node')).agg(
            F.min('lab').alias('dest'))
        movers = movers.join(nodes.select('node', 'count', order), 'node')
        movers = movers.join(size.withColumnRenamed('lab', 'dest'), 'dest')
        within = F.sum('count').over(
            Window.partitionBy('dest').orderBy(order)
            .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        movers = movers.withColumn('ok', _fits(F.col('size') + within,
                                               cap)).where('ok')
        nodes = nodes.join(movers.select('node', 'dest'), 'node', 'left')
        nodes = checkpoint(nodes.select(*[
            F.coalesce('dest', 'label').alias('label') if c == 'label'
            else c for c in columns]))
    return nodes
