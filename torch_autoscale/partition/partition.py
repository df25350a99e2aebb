r"""One entry point for every way of splitting a graph into parts."""
import operator
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from .lpmetis import CoarseGraph, lpmetis
from .metis import metis
from .validation import check_seed, to_edge_index

PARTITION_METHODS = ('metis', 'lpmetis', 'random', 'contiguous')
r"""The methods :func:`partition` knows."""

PARTITION_ENGINES = ('torch', 'spark')
r"""Where :func:`partition` runs: in this process, or (:obj:`"lpmetis"`
only) on Apache Spark."""


def partition(
    data: Union[Data, Tensor],
    num_parts: int,
    method: str = 'metis',
    num_nodes: Optional[int] = None,
    seed: Optional[int] = None,
    engine: str = 'torch',
    **kwargs,
) -> Union[Tensor, Tuple[Tensor, CoarseGraph]]:
    r"""Splits a graph into :obj:`num_parts` parts by one of the
    :obj:`PARTITION_METHODS`:

    * :obj:`"metis"`: :func:`~torch_autoscale.partition.metis`, the quality
      reference (few edges between parts, balanced sizes);
    * :obj:`"lpmetis"`: :func:`~torch_autoscale.partition.lpmetis`, label
      propagation and METIS on the coarsened graph, for graphs too large for
      METIS;
    * :obj:`"random"`: parts of balanced sizes, nodes drawn uniformly at
      random (a baseline that cuts about :math:`1 - 1/K` of the edges);
    * :obj:`"contiguous"`: the node order cut into :obj:`num_parts` ranges
      of balanced sizes (good when the nodes are already ordered by
      locality).

    Pass the result to :func:`~torch_autoscale.partition.sort_by_cluster`
    and :func:`~torch_autoscale.partition.permute` to lay a graph out for
    the loaders, or to
    :func:`~torch_autoscale.partition.partition_report` to measure it.

    Args:
        data (torch_geometric.data.Data or torch.Tensor): A graph with an
            :obj:`edge_index`, or the :obj:`edge_index` itself (shape
            :obj:`[2, num_edges]`, or a sparse adjacency matrix).
        num_parts (int): The number of parts, in :obj:`[1, num_nodes]`.
        method (str, optional): The method, one of
            :obj:`PARTITION_METHODS`. (default: :obj:`"metis"`)
        num_nodes (int, optional): The number of nodes, when :obj:`data` is
            an :obj:`edge_index`. (default: :obj:`None`, inferred)
        seed (int, optional): The seed of :obj:`"lpmetis"` and
            :obj:`"random"`; :obj:`"metis"` and :obj:`"contiguous"` are
            deterministic and ignore it. (default: :obj:`None`)
        engine (str, optional): :obj:`"torch"` (this process) or, for
            :obj:`"lpmetis"`, :obj:`"spark"`:
            :func:`~torch_autoscale.partition.lpmetis_spark.lpmetis_spark`
            on a Spark session (pass :obj:`spark=`; default: the active or
            a new local one), which gives the same partition for the same
            seed. For graphs only Spark holds, call that function on a
            DataFrame or Parquet path directly. (default: :obj:`"torch"`)
        **kwargs (optional): Further arguments of :func:`metis` or
            :func:`lpmetis`, such as :obj:`edge_weight`, or
            :obj:`return_coarse=True` for :obj:`"lpmetis"` (on either
            engine).

    Returns:
        torch.Tensor: The part id of every node, an :obj:`int64` tensor of
        shape :obj:`[num_nodes]` with values in :obj:`[0, num_parts)`; with
        :obj:`return_coarse=True`, a tuple of it and LPMetis'
        :class:`~torch_autoscale.partition.CoarseGraph`.

    Raises:
        ValueError: If :obj:`method` is unknown, :obj:`num_parts` is not in
            :obj:`[1, num_nodes]`, or the graph is invalid.
        ~torch_autoscale.errors.PartitionInputError: If :obj:`"metis"` or
            :obj:`"lpmetis"` gets negative, NaN or infinite weights (see
            :func:`~torch_autoscale.partition.metis` for how all other
            weights are mapped into METIS' range).

    Example:
        >>> from torch_geometric.utils import grid
        >>> edge_index, _ = grid(16, 16)
        >>> partition(edge_index, 4, method='contiguous').bincount()
        tensor([64, 64, 64, 64])
    """
    if method not in PARTITION_METHODS:
        raise ValueError(f"Unknown partition method {method!r}; pass one of "
                         f"{', '.join(repr(m) for m in PARTITION_METHODS)}")
    if engine not in PARTITION_ENGINES:
        raise ValueError(f"Unknown partition engine {engine!r}; pass one of "
                         f"{', '.join(repr(e) for e in PARTITION_ENGINES)}")
    if engine == 'spark' and method != 'lpmetis':
        raise ValueError(f"Only method='lpmetis' runs with engine='spark' "
                         f"(got method={method!r}); use engine='torch'")
    if isinstance(data, Data):
        if 'edge_index' not in data and 'adj_t' not in data:
            raise ValueError("'data' has no 'edge_index' (or 'adj_t'); "
                             "pass a graph with connectivity")
        if num_nodes is None:
            num_nodes = data.num_nodes
        edge_index = (data.edge_index if 'edge_index' in data else
                      data.adj_t.t())
    else:
        edge_index = data
    if method in ('random', 'contiguous') and kwargs:
        raise ValueError(f"Method {method!r} takes no further arguments "
                         f"(got {', '.join(sorted(kwargs))})")

    try:
        num_parts = operator.index(num_parts)
    except TypeError:
        raise ValueError(f"'num_parts' must be an integer (got "
                         f"{num_parts!r})") from None
    if method in ('random', 'contiguous'):
        seed = check_seed(seed)
        edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
        if not 1 <= num_parts <= num_nodes:
            raise ValueError(f"'num_parts' must lie in [1, {num_nodes}] "
                             f"(the number of nodes); got {num_parts}")
        # Part `i * K // N` for position `i`: sizes differ by at most one.
        part = torch.arange(num_nodes) * num_parts // num_nodes
        if method == 'random':
            gen = torch.Generator()
            if seed is not None:
                gen.manual_seed(seed)
            else:
                gen.seed()
            part = part[torch.randperm(num_nodes, generator=gen)]
        return part.to(edge_index.device)

    if num_parts < 1:
        raise ValueError(f"'num_parts' must be at least 1 (got {num_parts})")
    if method == 'metis':
        return metis(edge_index, num_nodes, num_parts, **kwargs)
    if engine == 'spark':
        return _lpmetis_on_spark(edge_index, num_nodes, num_parts, seed,
                                 **kwargs)
    return lpmetis(edge_index, num_nodes, num_parts, seed=seed, **kwargs)


def _lpmetis_on_spark(edge_index: Tensor, num_nodes: Optional[int],
                      num_parts: int, seed: Optional[int],
                      edge_weight: Optional[Tensor] = None,
                      spark=None, return_coarse: bool = False, **kwargs
                      ) -> Union[Tensor, Tuple[Tensor, CoarseGraph]]:
    r"""An in-memory graph through
    :func:`~torch_autoscale.partition.lpmetis_spark.lpmetis_spark`."""
    from . import spark as sp
    from .lpmetis_spark import lpmetis_spark, read_parts
    from .validation import check_weight
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    edge_weight = check_weight(edge_weight, 'edge_weight',
                               edge_index.size(1),
                               'one entry per edge of `edge_index`')
    sp.require_pyspark()
    spark = spark if spark is not None else sp.default_session()
    columns = [edge_index[0].tolist(), edge_index[1].tolist()]
    schema = 'src long, dst long'
    if edge_weight is not None:
        columns.append(edge_weight.double().tolist())
        schema += ', weight double'
    df = spark.createDataFrame(list(zip(*columns)), schema)
    out = lpmetis_spark(df, num_parts, num_nodes, spark, seed=seed,
                        return_coarse=return_coarse, **kwargs)
    parts, coarse = out if return_coarse else (out, None)
    cluster = read_parts(parts, num_nodes, num_parts).to(edge_index.device)
    return (cluster, coarse) if return_coarse else cluster
