r"""The door to `METIS <https://github.com/KarypisLab/METIS>`_: every call
into METIS in :mod:`torch_autoscale.partition` passes through
:func:`partition_csr`, which validates a symmetric CSR graph, maps its
weights into the integer range METIS can sum (:func:`to_metis_weight`), and
runs the first working backend (:obj:`torch-sparse`, :obj:`pyg-lib`,
:obj:`pymetis`), falling back to the next one when a backend raises or
returns an invalid clustering."""
import functools
import logging
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.index import index2ptr, ptr2index

import torch_autoscale.typing
from torch_autoscale.errors import PartitionInputError

from .validation import check_node_weight_total, check_weight_values

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
r"""A METIS backend: :obj:`(rowptr, col, num_parts, node_weight,
edge_weight, recursive)` to the part id of every node."""


@functools.lru_cache(maxsize=None)
def _pymetis_idx_width() -> int:
    try:
        import pymetis
        return int(pymetis.zero_copy_dtype().itemsize) * 8
    except Exception:  # Older pymetis: assume the narrower build.
        return 32


def idx_width() -> int:
    r"""The bit width of METIS' index type :obj:`idx_t` for the backends
    that may run: :obj:`pymetis` reports its own; builds of
    :obj:`torch-sparse` and :obj:`pyg-lib` cannot tell, so they count as
    32-bit (as Debian's :obj:`libmetis` is).

    Returns:
        :obj:`32` or :obj:`64`.
    """
    if (torch_autoscale.typing.WITH_TORCH_SPARSE
            or torch_autoscale.typing.WITH_PYG_LIB):
        return 32
    if torch_autoscale.typing.WITH_PYMETIS:
        return _pymetis_idx_width()
    return 32


def weight_limit() -> int:
    r"""The largest total of edge (or node) weights METIS receives (see
    :obj:`WEIGHT_HEADROOM_BITS`)."""
    return 2**(idx_width() - WEIGHT_HEADROOM_BITS)


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


def to_metis_weight(weight: Tensor, name: str, limit: int) -> Tensor:
    r"""Maps finite non-negative weights to the :obj:`int64` weights METIS
    takes, with a total of at most :obj:`limit` (see the note in
    :func:`~torch_autoscale.partition.metis`): zero stays zero, and every
    positive weight becomes at least :obj:`1`. Integer weights that fit
    already come back unchanged, so the mapping is idempotent.

    Args:
        weight (torch.Tensor): Finite non-negative weights of any real
            dtype (checked by
            :func:`~torch_autoscale.partition.validation.check_weight`).
        name (str): The argument's name, for the warning and the error.
        limit (int): The largest total allowed, *e.g.*,
            :func:`weight_limit`.

    Raises:
        ~torch_autoscale.errors.PartitionInputError: If there are more
            positive weights than :obj:`limit // 2`.
    """
    if weight.numel() == 0:
        return weight.long()
    positive = weight > 0
    num_positive = int(positive.sum())
    if num_positive == 0:
        return torch.zeros_like(weight, dtype=torch.long)
    if 2 * num_positive > limit:
        raise PartitionInputError(
            f"'{name}' has {num_positive} positive entries, more than "
            f"{idx_width()}-bit METIS can sum when every one weighs at "
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
            "weight is %.3g", name, scale, idx_width(), limit,
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
    and its weights
    (:func:`~torch_autoscale.partition.validation.check_weight_values`),
    maps the weights into METIS' safe range (:func:`to_metis_weight`) and
    drops the edges whose weight is zero (METIS requires positive edge
    weights)."""
    width, limit = idx_width(), weight_limit()
    if num_nodes > limit or col.numel() > limit:
        raise PartitionInputError(
            f"A graph of {num_nodes} nodes and {col.numel()} adjacency "
            f"entries is too large for {width}-bit METIS (at most {limit} "
            f"of each); partition it via 'lpmetis', or install a 64-bit "
            f"build of METIS")
    if node_weight is not None:
        check_weight_values(node_weight, 'node_weight')
        check_node_weight_total(node_weight)
        node_weight = to_metis_weight(node_weight, 'node_weight', limit)
    if edge_weight is not None:
        check_weight_values(edge_weight, 'edge_weight')
        edge_weight = to_metis_weight(edge_weight, 'edge_weight', limit)
        keep = edge_weight > 0
        if not bool(keep.all()):
            row = ptr2index(rowptr, col.numel())
            rowptr = index2ptr(row[keep], size=num_nodes)
            col, edge_weight = col[keep], edge_weight[keep]
    return rowptr, col, node_weight, edge_weight


def partition_csr(rowptr: Tensor, col: Tensor, num_parts: int,
                  node_weight: Optional[Tensor],
                  edge_weight: Optional[Tensor], recursive: bool,
                  num_nodes: int,
                  seed: Optional[int] = None) -> Tuple[Tensor, str]:
    r"""Runs the first METIS backend that works on a symmetric CSR graph on
    the CPU with finite non-negative weights of any real dtype. Every call
    into METIS goes through here, and so through the same checks and
    weight normalization; a graph without edges is balanced by node weight
    without METIS.

    Args:
        rowptr (torch.Tensor): The CSR row pointers, of shape
            :obj:`[num_nodes + 1]`.
        col (torch.Tensor): The column indices; the graph must be
            symmetric and free of self-loops.
        num_parts (int): The number of parts.
        node_weight (torch.Tensor, optional): The node weights.
        edge_weight (torch.Tensor, optional): The weights of the entries of
            :obj:`col`.
        recursive (bool): Whether to use recursive bisection instead of
            k-way partitioning.
        num_nodes (int): The number of nodes.
        seed (int, optional): The seed of METIS' random choices, which only
            the :obj:`pymetis` backend takes. (default: :obj:`None`, METIS'
            fixed default seed: the same parts on every call)

    Returns:
        (torch.Tensor, str): The part id of every node and the name of the
        backend that produced it.

    Raises:
        ~torch_autoscale.errors.PartitionInputError: If the graph is too
            large for METIS' index type, or a weight is invalid.
        ImportError: If no METIS backend is installed or working, or
            :obj:`seed` is given without :obj:`pymetis`.
    """
    rowptr, col, node_weight, edge_weight = _metis_input(
        rowptr, col, node_weight, edge_weight, num_nodes)
    if num_parts <= 1:
        return torch.zeros(num_nodes, dtype=torch.long), 'none'
    if col.numel() == 0:  # No edges: nothing to cut, only to balance.
        return _balance_by_weight(node_weight, num_nodes,
                                  num_parts), 'no edges'
    backends = _backends()
    if seed is not None:
        backends = [(name, functools.partial(backend, seed=seed))
                    for name, backend in backends if name == 'pymetis']
        if not backends:
            raise ImportError("a METIS 'seed' needs the 'pymetis' backend "
                              "(the others fix METIS' seed); install it via "
                              "'pip install pymetis' or leave 'seed' out")
    for name, backend in backends:
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
    r"""Raises a :class:`RuntimeError` if a backend returned invalid part
    ids, so that the next backend is tried."""
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
    r"""The METIS backends that :mod:`torch_autoscale.typing` reports
    importable, in the order they are tried."""
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
                   edge_weight: Optional[Tensor], recursive: bool,
                   seed: Optional[int] = None) -> Tensor:
    import numpy as np
    import pymetis

    # Hand over arrays of METIS' own index type, so nothing is copied:
    dtype = (pymetis.zero_copy_dtype() if hasattr(pymetis, 'zero_copy_dtype')
             else np.dtype(np.int64))

    def to_numpy(x: Optional[Tensor]) -> Optional[np.ndarray]:
        return None if x is None else x.numpy().astype(dtype, copy=False)

    kwargs = dict(vweights=to_numpy(node_weight),
                  eweights=to_numpy(edge_weight), recursive=recursive)
    if seed is not None:
        # METIS seeds the C library's generator, for which (in glibc)
        # srand(0) is srand(1): shift by one so that every seed differs.
        kwargs['options'] = pymetis.Options(seed=seed + 1)
    if hasattr(pymetis, 'CSRAdjacency'):  # pymetis >= 2025.2
        adjacency = pymetis.CSRAdjacency(to_numpy(rowptr), to_numpy(col))
        out = pymetis.part_graph(num_parts, adjacency, **kwargs)
    else:  # pragma: no cover
        out = pymetis.part_graph(num_parts, xadj=to_numpy(rowptr),
                                 adjncy=to_numpy(col), **kwargs)
    return torch.from_numpy(np.asarray(out.vertex_part, dtype=np.int64))
