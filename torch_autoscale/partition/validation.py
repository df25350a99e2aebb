r"""Input checks that every partitioning function shares: the graph as an
:obj:`edge_index` or a sparse adjacency, node and edge weights, integer
arguments and seeds. Each raises a :class:`ValueError` (or
:class:`~torch_autoscale.errors.PartitionInputError`) that names the argument
and the fix."""
import operator
from typing import Any, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.index import ptr2index
from torch_geometric.typing import SparseTensor

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.utils.checks import check_int


def describe(value: Any) -> str:
    r"""What an error message says about a wrong argument: its shape and
    dtype if it is a tensor, its type otherwise.

    Args:
        value (Any): The argument.
    """
    if isinstance(value, Tensor):
        return f"shape {list(value.shape)} and dtype {value.dtype}"
    return f"an object of type '{type(value).__name__}'"


def to_edge_index(edge_index: Tensor,
                  num_nodes: Optional[int]) -> Tuple[Tensor, int]:
    r"""Validates the graph input of a partitioning function and returns
    it as a :obj:`[2, num_edges]` :obj:`int64` tensor, together with the
    number of nodes.

    Args:
        edge_index (torch.Tensor): An integer tensor of shape
            :obj:`[2, num_edges]`, or a square sparse adjacency matrix
            (:obj:`torch.sparse_csr`, :obj:`torch.sparse_csc`,
            :obj:`torch.sparse_coo` or a :obj:`SparseTensor`) whose values
            are ignored.
        num_nodes (int, optional): The number of nodes; inferred if
            :obj:`None`.

    Raises:
        ValueError: If either argument is malformed, if they disagree, or
            if the graph has no nodes.
    """
    if num_nodes is not None:
        num_nodes = check_int(num_nodes, 'num_nodes', 0)

    if isinstance(edge_index, SparseTensor):  # `torch_sparse` adjacency.
        edge_index = edge_index.to_torch_sparse_coo_tensor()

    if not isinstance(edge_index, Tensor):
        raise ValueError(f"'edge_index' must be a tensor of shape [2, "
                         f"num_edges] or a sparse adjacency matrix (got "
                         f"{describe(edge_index)})")

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
    r"""The stored entries of a sparse adjacency as :obj:`[2, nnz]`."""
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


def check_weight(weight: Optional[Tensor], name: str, size: int,
                 what: str) -> Optional[Tensor]:
    r"""Checks the shape of user weights and returns them as a detached
    one-dimensional real tensor (booleans as :obj:`int64`), validated by
    :func:`check_weight_values`.

    Args:
        weight (torch.Tensor, optional): The weights, of shape
            :obj:`[size]` or :obj:`[size, 1]`; :obj:`None` passes through.
        name (str): The argument's name, for the error messages.
        size (int): The number of weights expected.
        what (str): What the weights belong to, *e.g.*,
            :obj:`"one entry per node"`, for the error messages.

    Raises:
        ValueError: If :obj:`weight` is not a dense real tensor of
            :obj:`size` entries.
        ~torch_autoscale.errors.PartitionInputError: If it holds NaN,
            infinite or negative values.
    """
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or weight.layout != torch.strided:
        raise ValueError(f"'{name}' must be a dense tensor (got "
                         f"{describe(weight)})")
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
    check_weight_values(weight, name)
    return weight


def check_weight_values(weight: Tensor, name: str) -> None:
    r"""Raises :class:`~torch_autoscale.errors.PartitionInputError` if
    :obj:`weight` holds NaN, infinite or negative values.

    Args:
        weight (torch.Tensor): The weights.
        name (str): The argument's name, for the error messages.
    """
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


def check_node_weight_total(node_weight: Tensor) -> None:
    r"""Raises :class:`~torch_autoscale.errors.PartitionInputError` if every
    node weight is zero (METIS would divide by a total of zero).

    Args:
        node_weight (torch.Tensor): The node weights.
    """
    if node_weight.numel() > 0 and not bool((node_weight > 0).any()):
        raise PartitionInputError(
            "'node_weight' must contain at least one positive entry (all "
            "weights are zero), or METIS divides by a total of zero; pass "
            "'node_weight=None' to balance node counts instead")


def check_seed(seed: Any) -> Optional[int]:
    r"""Returns :obj:`seed` if :meth:`torch.Generator.manual_seed` takes it
    (an integer in :obj:`[-2**63, 2**64)`, not a :obj:`bool`) or it is
    :obj:`None`, and raises a :class:`ValueError` otherwise.

    Args:
        seed (Any): The seed.
    """
    if seed is None:
        return None
    if isinstance(seed, bool):
        raise ValueError(f"'seed' must be an integer or None (got {seed!r})")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(f"'seed' must be an integer or None (got "
                         f"{seed!r}); pass, e.g., 'seed=0'") from None
    if not -2**63 <= seed < 2**64:
        raise ValueError(f"'seed' must lie in [-2**63, 2**64) (got {seed})")
    return seed


def check_cluster(cluster: Any, num_nodes: Optional[int] = None) -> Tensor:
    r"""Validates a part id per node and returns it as :obj:`int64`: a
    one-dimensional integer tensor of non-negative ids (of
    :obj:`num_nodes` entries, if given).

    Raises:
        ValueError: Naming :obj:`cluster` and the fix.
    """
    if not isinstance(cluster, Tensor) or cluster.dim() != 1:
        raise ValueError(f"'cluster' must be a one-dimensional tensor with a "
                         f"part id per node (got "
                         f"{describe(cluster)})")
    if cluster.is_floating_point() or cluster.is_complex():
        raise ValueError(f"'cluster' must hold integer part ids (got dtype "
                         f"{cluster.dtype}); convert it via 'cluster.long()'")
    if num_nodes is not None and cluster.numel() != num_nodes:
        raise ValueError(f"'cluster' must hold one part id per node "
                         f"({num_nodes}, got {cluster.numel()})")
    cluster = cluster.long()
    if cluster.numel() > 0 and int(cluster.min()) < 0:
        raise ValueError(f"'cluster' must hold non-negative part ids (got "
                         f"{int(cluster.min())})")
    return cluster
