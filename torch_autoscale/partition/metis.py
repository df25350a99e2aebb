r"""Graph clustering with `METIS <https://github.com/KarypisLab/METIS>`_.

:func:`metis` assigns every node to one of :obj:`num_parts` clusters, and
:func:`sort_by_cluster` turns such an assignment into the node permutation
and cluster boundaries that :func:`~torch_autoscale.partition.permute` and the
loaders consume.
"""
import functools
import logging
import operator
import time
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.index import index2ptr, ptr2index
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import remove_self_loops, to_undirected

import torch_autoscale.typing
from torch_autoscale.errors import PartitionInputError

log = logging.getLogger(__name__)

WEIGHT_RESOLUTION: int = 1000
r"""Floating-point weights are scaled so that the largest one becomes this
integer before they are rounded (METIS only accepts integer weights)."""

WEIGHT_HEADROOM_BITS: int = 4
r"""The total of all edge weights, and the total of all node weights, that
METIS receives stays below :math:`2^{w - 4}` for METIS' index width
:math:`w` (:math:`2^{28}` for 32-bit, :math:`2^{60}` for 64-bit METIS):
METIS sums weights and multiplies such sums by small factors (up to 3)
internally, in its own integer type."""

Backend = Callable[
    [Tensor, Tensor, int, Optional[Tensor], Optional[Tensor], bool], Tensor]


def metis(
    edge_index: Tensor,
    num_nodes: Optional[int],
    num_parts: int,
    recursive: bool = False,
    node_weight: Optional[Tensor] = None,
    edge_weight: Optional[Tensor] = None,
    verbose: bool = True,
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
        ImportError: If no METIS backend is installed or working.

    Example:
        >>> from torch_geometric.utils import grid
        >>> edge_index, _ = grid(32, 32)
        >>> cluster = metis(edge_index, num_nodes=1024, num_parts=4)
        >>> cluster.unique()
        tensor([0, 1, 2, 3])
    """
    edge_index, num_nodes = _to_edge_index(edge_index, num_nodes)
    device = edge_index.device
    num_edges = edge_index.size(1)

    node_weight = _check_weight(node_weight, 'node_weight', num_nodes,
                                'one entry per node')
    edge_weight = _check_weight(edge_weight, 'edge_weight', num_edges,
                                'one entry per edge of `edge_index`')
    if node_weight is not None:
        _check_node_weight_total(node_weight)

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
        edge_weight = _to_metis_weight(edge_weight, 'edge_weight',
                                       _weight_limit() // 2)
    edge_index, edge_weight = to_undirected(edge_index, edge_weight,
                                            num_nodes=num_nodes, reduce='add')

    row, col = edge_index.cpu()
    rowptr = index2ptr(row, size=num_nodes)
    node_weight = node_weight.cpu() if node_weight is not None else None
    edge_weight = edge_weight.cpu() if edge_weight is not None else None

    cluster, name = _partition_csr(rowptr, col, num_parts, node_weight,
                                   edge_weight, recursive, num_nodes)

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
    if not isinstance(cluster, Tensor) or cluster.dim() != 1:
        raise ValueError(f"'cluster' must be a one-dimensional tensor with a "
                         f"part id per node (got "
                         f"{_describe(cluster)})")
    if cluster.is_floating_point() or cluster.is_complex():
        raise ValueError(f"'cluster' must hold integer part ids (got dtype "
                         f"{cluster.dtype}); convert it via 'cluster.long()'")
    cluster = cluster.long()
    if cluster.numel() > 0 and int(cluster.min()) < 0:
        raise ValueError(f"'cluster' must hold non-negative part ids (got "
                         f"{int(cluster.min())})")

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


# Input checks ################################################################


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"shape {list(value.shape)} and dtype {value.dtype}"
    return f"an object of type '{type(value).__name__}'"


def _to_edge_index(edge_index: Tensor,
                   num_nodes: Optional[int]) -> Tuple[Tensor, int]:
    r"""Validates the graph input and returns it as a :obj:`[2, E]` int64
    tensor, together with the number of nodes."""
    if num_nodes is not None:
        try:
            num_nodes = operator.index(num_nodes)
        except TypeError:
            raise ValueError(f"'num_nodes' must be an integer or None (got "
                             f"{num_nodes!r})") from None
        if num_nodes < 0:
            raise ValueError(f"'num_nodes' must be non-negative (got "
                             f"{num_nodes})")

    if isinstance(edge_index, SparseTensor):  # `torch_sparse` adjacency.
        edge_index = edge_index.to_torch_sparse_coo_tensor()

    if not isinstance(edge_index, Tensor):
        raise ValueError(f"'edge_index' must be a tensor of shape [2, "
                         f"num_edges] or a sparse adjacency matrix (got "
                         f"{_describe(edge_index)})")

    if edge_index.layout != torch.strided:  # Sparse adjacency matrix:
        size = tuple(edge_index.shape)
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"A sparse 'edge_index' must be a square "
                             f"adjacency matrix of shape [num_nodes, "
                             f"num_nodes] (got shape {list(size)})")
        if num_nodes is not None and num_nodes != size[0]:
            raise ValueError(f"'num_nodes' ({num_nodes}) does not match the "
                             f"size of the sparse 'edge_index' "
                             f"({list(size)}); pass 'num_nodes=None'")
        edge_index, num_nodes = _sparse_to_edge_index(edge_index), size[0]

    else:  # Dense `[2, num_edges]` tensor:
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            hint = ''
            if edge_index.dim() == 2 and edge_index.size(1) == 2:
                hint = ("; pass 'edge_index.t()' if it is stored as "
                        "[num_edges, 2]")
            raise ValueError(f"'edge_index' must have shape [2, num_edges] "
                             f"(got {list(edge_index.shape)}){hint}")
        if (edge_index.is_floating_point() or edge_index.is_complex()
                or edge_index.dtype == torch.bool):
            raise ValueError(f"'edge_index' must hold integer node indices "
                             f"(got dtype {edge_index.dtype}); convert it "
                             f"via 'edge_index.long()'")
        if type(edge_index) is not Tensor:  # e.g., `EdgeIndex`.
            edge_index = edge_index.as_subclass(Tensor)
        edge_index = edge_index.long()

        max_index = int(edge_index.max()) if edge_index.numel() > 0 else -1
        if edge_index.numel() > 0 and int(edge_index.min()) < 0:
            raise ValueError(f"'edge_index' must hold non-negative node "
                             f"indices (got {int(edge_index.min())})")
        if num_nodes is None:
            num_nodes = max_index + 1
        elif max_index >= num_nodes:
            raise ValueError(f"'edge_index' holds node index {max_index}, "
                             f"which does not fit 'num_nodes={num_nodes}'; "
                             f"pass 'num_nodes >= {max_index + 1}' or "
                             f"'num_nodes=None'")

    if num_nodes == 0:
        raise ValueError("Cannot partition an empty graph (it has no "
                         "nodes); pass a graph with at least one node")
    return edge_index, num_nodes


def _sparse_to_edge_index(adj: Tensor) -> Tensor:
    if adj.layout == torch.sparse_csr:
        col = adj.col_indices().long()
        row = ptr2index(adj.crow_indices().long(), col.numel())
    elif adj.layout == torch.sparse_csc:
        row = adj.row_indices().long()
        col = ptr2index(adj.ccol_indices().long(), row.numel())
    elif adj.layout == torch.sparse_coo:
        row, col = adj._indices().long()
    else:
        raise ValueError(f"'edge_index' has the unsupported sparse layout "
                         f"{adj.layout}; convert it via "
                         f"'edge_index.to_sparse_csr()'")
    return torch.stack([row, col], dim=0)


def _check_weight(weight: Optional[Tensor], name: str, size: int,
                  what: str) -> Optional[Tensor]:
    r"""Checks the shape of user weights and returns them as a detached
    one-dimensional real tensor (booleans as :obj:`int64`), validated by
    :func:`_check_weight_values`."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or weight.layout != torch.strided:
        raise ValueError(f"'{name}' must be a dense tensor (got "
                         f"{_describe(weight)})")
    if weight.dim() == 2 and weight.size(1) == 1:
        weight = weight.reshape(-1)
    if weight.dim() != 1 or weight.numel() != size:
        raise ValueError(f"'{name}' must have shape [{size}] ({what}); got "
                         f"shape {list(weight.shape)}")
    if weight.is_complex():
        raise ValueError(f"'{name}' must be real-valued (got dtype "
                         f"{weight.dtype})")
    weight = weight.detach()
    if weight.dtype == torch.bool:
        weight = weight.long()
    _check_weight_values(weight, name)
    return weight


def _check_weight_values(weight: Tensor, name: str) -> None:
    r"""Raises :class:`~torch_autoscale.errors.PartitionInputError` if
    :obj:`weight` holds NaN, infinite or negative values."""
    if weight.numel() == 0:
        return
    if weight.is_floating_point():
        finite = torch.isfinite(weight)
        if not bool(finite.all()):
            bad = (~finite).nonzero().view(-1)
            raise PartitionInputError(
                f"'{name}' must be finite, but holds {bad.numel()} NaN or "
                f"infinite value(s) (first at index {int(bad[0])}); METIS "
                f"cannot use them, so replace them, e.g., via "
                f"'torch.nan_to_num({name}, nan=0.0, posinf=...)'")
    if bool((weight < 0).any()):
        raise PartitionInputError(
            f"'{name}' must be non-negative (got {weight.min().item()}); "
            f"METIS cannot use negative weights, so shift or clamp them, "
            f"e.g., via '{name}.clamp(min=0)'")


def _check_node_weight_total(node_weight: Tensor) -> None:
    if node_weight.numel() > 0 and not bool((node_weight > 0).any()):
        raise PartitionInputError(
            "'node_weight' must contain at least one positive entry (all "
            "weights are zero), or METIS divides by a total of zero; pass "
            "'node_weight=None' to balance node counts instead")


@functools.lru_cache(maxsize=None)
def _pymetis_idx_width() -> int:
    try:
        import pymetis
        return int(pymetis.zero_copy_dtype().itemsize) * 8
    except Exception:  # Older pymetis: assume the narrower build.
        return 32


def _idx_width() -> int:
    r"""The bit width of METIS' index type :obj:`idx_t` for the backends
    that may run: :obj:`pymetis` reports its own; builds of
    :obj:`torch-sparse` and :obj:`pyg-lib` cannot tell, so they count as
    32-bit (as Debian's :obj:`libmetis` is)."""
    if (torch_autoscale.typing.WITH_TORCH_SPARSE
            or torch_autoscale.typing.WITH_PYG_LIB):
        return 32
    if torch_autoscale.typing.WITH_PYMETIS:
        return _pymetis_idx_width()
    return 32


def _weight_limit() -> int:
    r"""The largest total of edge (or node) weights METIS receives (see
    :obj:`WEIGHT_HEADROOM_BITS`)."""
    return 2**(_idx_width() - WEIGHT_HEADROOM_BITS)


def _gcd(x: Tensor) -> int:
    r"""The greatest common divisor of the positive integers :obj:`x`, by a
    tree of element-wise :meth:`torch.gcd` calls."""
    x = x.long()
    while x.numel() > 1:
        if x.numel() % 2 == 1:
            x = torch.cat([x, x[-1:]])
        x = torch.gcd(x[0::2], x[1::2])
        if bool((x == 1).any()):
            return 1
    return int(x[0]) if x.numel() > 0 else 1


def _to_metis_weight(weight: Tensor, name: str, limit: int) -> Tensor:
    r"""Maps finite non-negative weights to the :obj:`int64` weights METIS
    takes, with a total of at most :obj:`limit` (see the note in
    :func:`metis`): zero stays zero, and every positive weight becomes at
    least :obj:`1`. Integer weights that fit already come back unchanged,
    so the mapping is idempotent."""
    if weight.numel() == 0:
        return weight.long()
    positive = weight > 0
    num_positive = int(positive.sum())
    if num_positive == 0:
        return torch.zeros_like(weight, dtype=torch.long)
    if 2 * num_positive > limit:
        raise PartitionInputError(
            f"'{name}' has {num_positive} positive entries, more than "
            f"{_idx_width()}-bit METIS can sum when every one weighs at "
            f"least 1 (at most {limit // 2}); pass '{name}=None', or "
            f"partition the graph via 'lpmetis'")
    budget = limit - num_positive  # Rounding up adds at most 1 per entry.
    if not weight.is_floating_point():
        weight = weight.long()
        total = float(weight.double().sum())
        if total <= limit:  # Passed on unchanged.
            return weight
        divisor = _gcd(weight[positive])
        if divisor > 1:  # An exact division loses nothing:
            weight, total = weight // divisor, total / divisor
            if total <= limit:
                return weight
        scaled = weight.double()
        scale = budget / total
        lossy = True
    else:
        # Divide by the largest weight first, so that tiny (even
        # subnormal) or huge weights cannot overflow the scale:
        scaled = weight.double() / float(weight.max())
        total = float(scaled.sum())
        scale = float(WEIGHT_RESOLUTION)
        lossy = total * scale > budget
        if lossy:
            scale = budget / total
    scaled = scaled * scale
    out = scaled.round().long()
    out = torch.where(positive & (out == 0), torch.ones_like(out), out)
    if lossy:
        error = ((out - scaled).abs() / scaled)[positive].max()
        log.warning(
            "'%s' was rescaled proportionally by %.3g to fit %d-bit METIS "
            "(a total weight of at most %d), rounding each weight to an "
            "integer of at least 1: the largest relative change of a "
            "weight is %.3g", name, scale, _idx_width(), limit,
            float(error))
    return out


def _balance_by_weight(node_weight: Optional[Tensor], num_nodes: int,
                       num_parts: int) -> Tensor:
    r"""Cuts the node order into :obj:`num_parts` ranges of balanced total
    node weight (a node goes to the range its weight's midpoint falls in),
    the optimal partition of a graph without edges."""
    weight = (torch.ones(num_nodes, dtype=torch.double)
              if node_weight is None else node_weight.double())
    before = torch.cumsum(weight, 0) - weight
    part = (before + 0.5 * weight) * (num_parts / float(weight.sum()))
    return part.floor_().long().clamp_(0, num_parts - 1)


def _metis_input(
    rowptr: Tensor, col: Tensor, node_weight: Optional[Tensor],
    edge_weight: Optional[Tensor], num_nodes: int
) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    r"""The check at the door to METIS: validates a symmetric CSR graph
    and its weights (:func:`_check_weight_values`), maps the weights into
    METIS' safe range (:func:`_to_metis_weight`) and drops the edges whose
    weight is zero (METIS requires positive edge weights)."""
    width, limit = _idx_width(), _weight_limit()
    if num_nodes > limit or col.numel() > limit:
        raise PartitionInputError(
            f"A graph of {num_nodes} nodes and {col.numel()} adjacency "
            f"entries is too large for {width}-bit METIS (at most {limit} "
            f"of each); partition it via 'lpmetis', or install a 64-bit "
            f"build of METIS")
    if node_weight is not None:
        _check_weight_values(node_weight, 'node_weight')
        _check_node_weight_total(node_weight)
        node_weight = _to_metis_weight(node_weight, 'node_weight', limit)
    if edge_weight is not None:
        _check_weight_values(edge_weight, 'edge_weight')
        edge_weight = _to_metis_weight(edge_weight, 'edge_weight', limit)
        keep = edge_weight > 0
        if not bool(keep.all()):
            row = ptr2index(rowptr, col.numel())
            rowptr = index2ptr(row[keep], size=num_nodes)
            col, edge_weight = col[keep], edge_weight[keep]
    return rowptr, col, node_weight, edge_weight


def _partition_csr(rowptr: Tensor, col: Tensor, num_parts: int,
                   node_weight: Optional[Tensor],
                   edge_weight: Optional[Tensor], recursive: bool,
                   num_nodes: int) -> Tuple[Tensor, str]:
    r"""Runs the first METIS backend that works on a symmetric CSR graph on
    the CPU with finite non-negative weights of any real dtype; returns the
    part ids and the backend's name. Every call into METIS goes through
    here, and so through :func:`_metis_input`; a graph without edges is
    balanced by node weight without METIS."""
    rowptr, col, node_weight, edge_weight = _metis_input(
        rowptr, col, node_weight, edge_weight, num_nodes)
    if num_parts <= 1:
        return torch.zeros(num_nodes, dtype=torch.long), 'none'
    if col.numel() == 0:  # No edges: nothing to cut, only to balance.
        return _balance_by_weight(node_weight, num_nodes,
                                  num_parts), 'no edges'
    for name, backend in _backends():
        try:
            out = backend(rowptr, col, num_parts, node_weight, edge_weight,
                          recursive)
            return _check_cluster(out, num_nodes, num_parts, name), name
        except Exception as e:
            if name == 'pymetis':
                raise
            log.warning("METIS backend '%s' failed (%s); falling back to "
                        "the next backend", name, e)
    raise ImportError("METIS requires 'pymetis' (or a working "
                      "'torch-sparse' or 'pyg-lib' with METIS); install it "
                      "via 'pip install pymetis'")


def _check_cluster(cluster: Tensor, num_nodes: int, num_parts: int,
                   backend: str) -> Tensor:
    cluster = torch.as_tensor(cluster).view(-1).long()
    if cluster.numel() != num_nodes:
        raise RuntimeError(f"METIS backend '{backend}' returned "
                           f"{cluster.numel()} part ids for {num_nodes} "
                           f"nodes")
    if int(cluster.min()) < 0 or int(cluster.max()) >= num_parts:
        raise RuntimeError(f"METIS backend '{backend}' returned part ids "
                           f"outside of [0, {num_parts})")
    return cluster


# Backends ####################################################################


def _backends() -> List[Tuple[str, Backend]]:
    backends: List[Tuple[str, Backend]] = []
    if torch_autoscale.typing.WITH_TORCH_SPARSE:
        backends.append(('torch-sparse', _metis_torch_sparse))
    if torch_autoscale.typing.WITH_PYG_LIB:
        backends.append(('pyg-lib', _metis_pyg_lib))
    if torch_autoscale.typing.WITH_PYMETIS:
        backends.append(('pymetis', _metis_pymetis))
    return backends


def _metis_torch_sparse(rowptr: Tensor, col: Tensor, num_parts: int,
                        node_weight: Optional[Tensor],
                        edge_weight: Optional[Tensor],
                        recursive: bool) -> Tensor:
    if node_weight is None:
        return torch.ops.torch_sparse.partition(rowptr, col, edge_weight,
                                                num_parts, recursive)
    return torch.ops.torch_sparse.partition2(rowptr, col, edge_weight,
                                             node_weight, num_parts,
                                             recursive)


def _metis_pyg_lib(rowptr: Tensor, col: Tensor, num_parts: int,
                   node_weight: Optional[Tensor],
                   edge_weight: Optional[Tensor], recursive: bool) -> Tensor:
    return torch.ops.pyg.metis(rowptr, col, num_parts, node_weight,
                               edge_weight, recursive)


def _metis_pymetis(rowptr: Tensor, col: Tensor, num_parts: int,
                   node_weight: Optional[Tensor],
                   edge_weight: Optional[Tensor], recursive: bool) -> Tensor:
    import numpy as np
    import pymetis

    # Hand over arrays of METIS' own index type, so nothing is copied:
    dtype = (pymetis.zero_copy_dtype() if hasattr(pymetis, 'zero_copy_dtype')
             else np.dtype(np.int64))

    def to_numpy(x: Optional[Tensor]) -> Optional[np.ndarray]:
        return None if x is None else x.numpy().astype(dtype, copy=False)

    kwargs = dict(vweights=to_numpy(node_weight),
                  eweights=to_numpy(edge_weight), recursive=recursive)
    if hasattr(pymetis, 'CSRAdjacency'):  # pymetis >= 2025.2
        adjacency = pymetis.CSRAdjacency(to_numpy(rowptr), to_numpy(col))
        out = pymetis.part_graph(num_parts, adjacency, **kwargs)
    else:  # pragma: no cover
        out = pymetis.part_graph(num_parts, xadj=to_numpy(rowptr),
                                 adjncy=to_numpy(col), **kwargs)
    return torch.from_numpy(np.asarray(out.vertex_part, dtype=np.int64))
