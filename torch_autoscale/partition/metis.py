r"""Graph clustering with `METIS <https://github.com/KarypisLab/METIS>`_.

:func:`metis` assigns every node to one of :obj:`num_parts` clusters, and
:func:`sort_by_cluster` turns such an assignment into the node permutation
and cluster boundaries that :func:`~torch_autoscale.partition.permute` and the
loaders consume.
"""
import logging
import operator
import time
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.index import index2ptr
from torch_geometric.utils import remove_self_loops, to_undirected

from .backend import (  # noqa: F401  (the note of metis() names them)
    WEIGHT_HEADROOM_BITS,
    WEIGHT_RESOLUTION,
    partition_csr,
    to_metis_weight,
    weight_limit,
)
from .validation import (
    check_cluster,
    check_int,
    check_node_weight_total,
    check_weight,
    to_edge_index,
)

log = logging.getLogger(__name__)


def metis(
    edge_index: Tensor,
    num_nodes: Optional[int],
    num_parts: int,
    recursive: bool = False,
    node_weight: Optional[Tensor] = None,
    edge_weight: Optional[Tensor] = None,
    verbose: bool = True,
    seed: Optional[int] = None,
) -> Tensor:
    r"""Clusters a graph into :obj:`num_parts` parts via METIS, as used by the
    `"GNNAutoScale: Scalable and Expressive Graph Neural Networks via
    Historical Embeddings" <https://arxiv.org/abs/2106.05609>`_ and
    `"Cluster-GCN" <https://arxiv.org/abs/1905.07953>`_ papers.

    METIS minimizes the number (or total weight) of edges between parts while
    keeping the parts balanced in node count (or total node weight).
    Its input must be undirected and free of self-loops, so the graph is
    symmetrized first (:meth:`~torch_geometric.utils.to_undirected`: an edge
    given in both directions gets the *sum* of both weights) and self-loops
    are dropped. A directed graph is thus clustered exactly like its
    undirected version.

    Backends are tried in the order :obj:`torch-sparse`
    (:obj:`torch.ops.torch_sparse.partition`), :obj:`pyg-lib`
    (:obj:`torch.ops.pyg.metis`), :obj:`pymetis`: the first two only when
    :mod:`torch_autoscale.typing` reports them importable, and a backend that
    raises (or returns an invalid clustering) falls back to the next one.

    .. note::
        METIS only accepts integer weights, and sums them in its own index
        type (32-bit or 64-bit, depending on the build; see
        :obj:`WEIGHT_HEADROOM_BITS`), so weights are normalized before they
        reach it; every call into METIS in :obj:`torch_autoscale` passes
        through the same normalization:

        * negative, NaN or infinite weights raise
          :class:`~torch_autoscale.errors.PartitionInputError`;
        * integer (and boolean) weights are passed on unchanged while their
          total fits METIS' safe range; larger ones are divided by their
          greatest common divisor and, if that is not enough, rescaled
          proportionally and rounded, with a logged warning;
        * floating-point weights are scaled so that the largest becomes
          :obj:`WEIGHT_RESOLUTION` (:obj:`1000`), or less where needed to
          keep their total in range (with a logged warning), and rounded;
        * a positive weight never rounds down to zero, so zero weights are
          exactly the ones given as zero.

        Edges whose (symmetrized) weight is zero are dropped, which does not
        change the objective. If no edge is left (*e.g.*, all edge weights
        are zero), METIS is not called: the nodes are cut, in their order,
        into :obj:`num_parts` ranges of balanced total node weight (an edge
        cut of zero, as nothing connects them). Node weights of zero are
        allowed, but not all of them.

    .. note::
        METIS may leave some of the :obj:`num_parts` parts empty, mostly on
        tiny or very unevenly weighted graphs. The returned ids are *not*
        renumbered, so every id lies in :obj:`[0, num_parts)` but not every
        id needs to occur; code that iterates over parts must allow for
        empty ones (:func:`sort_by_cluster` gives them zero-length ranges).
        A warning is logged when this happens.

    Args:
        edge_index (torch.Tensor): The graph connectivity, either as an
            integer tensor of shape :obj:`[2, num_edges]`, or as a square
            sparse adjacency matrix (:obj:`torch.sparse_csr`,
            :obj:`torch.sparse_csc` or :obj:`torch.sparse_coo`) of shape
            :obj:`[num_nodes, num_nodes]` whose values are ignored.
        num_nodes (int, optional): The number of nodes. Inferred from
            :obj:`edge_index` if set to :obj:`None` (from its size for
            sparse input, else as :obj:`edge_index.max() + 1`).
        num_parts (int): The number of parts. Values :obj:`<= 1` put every
            node into part :obj:`0` without calling METIS.
        recursive (bool, optional): If set to :obj:`True`, uses multilevel
            recursive bisection instead of multilevel k-way partitioning.
            (default: :obj:`False`)
        node_weight (torch.Tensor, optional): Finite non-negative node
            weights of shape :obj:`[num_nodes]`, not all zero, to balance
            instead of node counts. (default: :obj:`None`)
        edge_weight (torch.Tensor, optional): Finite non-negative edge
            weights of shape :obj:`[num_edges]` (one per column of
            :obj:`edge_index`, or one per stored entry of a sparse
            :obj:`edge_index`), whose total over cut edges is minimized;
            zero-weight edges are dropped. (default: :obj:`None`)
        verbose (bool, optional): Whether to log the edge cut and warn about
            empty parts; callers that partition many small graphs turn it
            off. (default: :obj:`True`)
        seed (int, optional): The seed of METIS' random choices (matching,
            initial partitions), for parts that vary with it; it needs the
            :obj:`pymetis` backend. (default: :obj:`None`, METIS' fixed
            default seed, as the GAS and Cluster-GCN reference code: the
            same parts on every call)

    Returns:
        torch.Tensor: The part id of every node, an :obj:`int64` tensor of
        shape :obj:`[num_nodes]` with values in :obj:`[0, num_parts)`, on the
        device of :obj:`edge_index`.

    Raises:
        ValueError: If :obj:`edge_index`, :obj:`num_nodes`,
            :obj:`num_parts` or the shape of :obj:`node_weight` or
            :obj:`edge_weight` is invalid, if the graph is empty, or if
            :obj:`num_parts` exceeds the number of nodes.
        ~torch_autoscale.errors.PartitionInputError: If a weight is
            negative, NaN or infinite, if every node weight is zero, or if
            the graph is too large for METIS' index type (a subclass of
            :class:`ValueError`).
        ImportError: If no METIS backend is installed or working, or
            :obj:`seed` is given without :obj:`pymetis`.

    Example:
        >>> from torch_geometric.utils import grid
        >>> edge_index, _ = grid(32, 32)
        >>> cluster = metis(edge_index, num_nodes=1024, num_parts=4)
        >>> cluster.unique()
        tensor([0, 1, 2, 3])
    """
    edge_index, num_nodes = to_edge_index(edge_index, num_nodes)
    device = edge_index.device
    num_edges = edge_index.size(1)

    node_weight = check_weight(node_weight, 'node_weight', num_nodes,
                               'one entry per node')
    edge_weight = check_weight(edge_weight, 'edge_weight', num_edges,
                               'one entry per edge of `edge_index`')
    if node_weight is not None:
        check_node_weight_total(node_weight)
    if seed is not None:
        seed = check_int(seed, 'seed', 0)
        if seed >= 2**31 - 1:  # METIS' index may be 32 bits; it gets
            # seed + 1 (see the pymetis backend).
            raise ValueError(f"'seed' must lie in [0, 2**31 - 1) (got "
                             f"{seed})")

    try:
        num_parts = operator.index(num_parts)
    except TypeError:
        raise ValueError(f"'num_parts' must be an integer "
                         f"(got {num_parts!r})") from None
    if num_parts > num_nodes:
        raise ValueError(f"'num_parts' ({num_parts}) must not exceed the "
                         f"number of nodes ({num_nodes}); pass "
                         f"'num_parts <= {num_nodes}'")
    if num_parts <= 1:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)

    t = time.perf_counter()

    # METIS expects an undirected graph without self-loops in CSR format:
    edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
    if edge_weight is not None:
        # Integer weights *before* symmetrization, which counts every edge
        # twice: its sums then cannot overflow, and stay symmetric.
        edge_weight = to_metis_weight(edge_weight, 'edge_weight',
                                      weight_limit() // 2)
    edge_index, edge_weight = to_undirected(edge_index, edge_weight,
                                            num_nodes=num_nodes, reduce='add')

    row, col = edge_index.cpu()
    rowptr = index2ptr(row, size=num_nodes)
    node_weight = node_weight.cpu() if node_weight is not None else None
    edge_weight = edge_weight.cpu() if edge_weight is not None else None

    cluster, name = partition_csr(rowptr, col, num_parts, node_weight,
                                  edge_weight, recursive, num_nodes, seed)

    sizes = torch.bincount(cluster, minlength=num_parts)
    num_empty = int((sizes == 0).sum())
    if num_empty > 0 and verbose:
        log.warning(
            "METIS left %d of %d parts empty on a graph of %d nodes; part "
            "ids are kept as returned, so expect empty parts downstream",
            num_empty, num_parts, num_nodes)
    if verbose and log.isEnabledFor(logging.INFO):
        edge_cut = int((cluster[row] != cluster[col]).sum()) // 2
        log.info(
            "METIS (%s) split %d nodes and %d undirected edges into %d "
            "parts in %.3fs (edge cut %d, largest part %d nodes)", name,
            num_nodes, row.numel() // 2, num_parts,
            time.perf_counter() - t, edge_cut, int(sizes.max()))

    return cluster.to(device)


def sort_by_cluster(
    cluster: Tensor,
    num_parts: Optional[int] = None,
) -> Tuple[Tensor, Tensor]:
    r"""Groups nodes by their part id.

    Args:
        cluster (torch.Tensor): The part id of every node, an integer tensor
            of shape :obj:`[num_nodes]` with non-negative values, *e.g.*, the
            output of :func:`metis`.
        num_parts (int, optional): The number of parts. Inferred as
            :obj:`cluster.max() + 1` if set to :obj:`None`.
            (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): The node permutation :obj:`perm` of
        shape :obj:`[num_nodes]` (a stable argsort of :obj:`cluster`, so new
        node :obj:`i` is old node :obj:`perm[i]` and nodes keep their
        relative order inside a part), and the :obj:`int64` boundaries
        :obj:`ptr` of shape :obj:`[num_parts + 1]`, such that part :obj:`k`
        holds the new nodes :obj:`ptr[k]:ptr[k + 1]` (empty parts give empty
        ranges).

    Example:
        >>> perm, ptr = sort_by_cluster(torch.tensor([1, 0, 1, 0, 2]))
        >>> perm
        tensor([1, 3, 0, 2, 4])
        >>> ptr
        tensor([0, 2, 4, 5])
    """
    cluster = check_cluster(cluster)

    max_part = int(cluster.max()) + 1 if cluster.numel() > 0 else 0
    if num_parts is None:
        num_parts = max_part
    elif not isinstance(num_parts, int) or num_parts < 0:
        raise ValueError(f"'num_parts' must be a non-negative integer or "
                         f"None (got {num_parts!r})")
    elif num_parts < max_part:
        raise ValueError(f"'cluster' holds part id {max_part - 1}, which "
                         f"does not fit 'num_parts={num_parts}'; pass "
                         f"'num_parts >= {max_part}' or 'num_parts=None'")

    perm = torch.sort(cluster, stable=True).indices
    ptr = cluster.new_zeros(num_parts + 1)
    torch.cumsum(torch.bincount(cluster, minlength=num_parts), dim=0,
                 out=ptr[1:])
    return perm, ptr
