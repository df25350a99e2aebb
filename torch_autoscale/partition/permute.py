r"""Reordering the nodes of a graph, *e.g.*, to make clusters contiguous."""
import copy
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.data import Data
from torch_geometric.index import index2ptr, ptr2index
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor, select

from torch_autoscale.utils.sparse import index_select_rows


def permute(data: Data, perm: Tensor) -> Data:
    r"""Reorders the nodes of a graph: new node :obj:`i` is old node
    :obj:`perm[i]`.

    Together with :func:`~torch_autoscale.partition.partition` and
    :func:`~torch_autoscale.partition.sort_by_cluster`, this makes every
    cluster a contiguous range of nodes, which is what lets GNNAutoScale
    read and write histories with a few large copies:

    .. code-block:: python

        cluster = partition(data, num_parts=40)  # METIS by default.
        perm, ptr = sort_by_cluster(cluster, num_parts=40)
        data = permute(data, perm)  # Part k is nodes ptr[k]:ptr[k + 1].

    The returned object is a shallow copy of :obj:`data` in which

    * every node-level attribute (as told by
      :meth:`~torch_geometric.data.Data.is_node_attr`, *e.g.*, :obj:`x`,
      :obj:`y`, :obj:`train_mask`) is indexed by :obj:`perm` along its
      concatenation dimension;
    * :obj:`edge_index` is relabelled through the inverse permutation. Its
      edges keep their order (column :obj:`j` still describes the same edge),
      so edge-level attributes such as :obj:`edge_attr` or
      :obj:`edge_weight` are left as they are and stay attached to their
      edges. Call :meth:`~torch_geometric.utils.sort_edge_index` afterwards
      if sorted edges are needed;
    * every sparse adjacency matrix of shape :obj:`[num_nodes, num_nodes]`
      stored under a key containing :obj:`"adj"` (*e.g.*, :obj:`adj_t` as a
      :obj:`torch.sparse_csr` tensor, also :obj:`torch.sparse_csc`,
      :obj:`torch.sparse_coo` and :class:`torch_sparse.SparseTensor`) has
      both its rows and columns permuted, keeping each value with its
      entry. Compressed layouts come back valid and sorted by row, then by
      column (by column, then row, for CSC). If :obj:`data` has no
      :obj:`edge_index`, edge-level attributes are assumed to be aligned
      with the stored entries of such a matrix and are reordered with them;
    * every other tensor of node indices (a key containing :obj:`"index"`,
      *e.g.*, :obj:`edge_label_index`, or :obj:`face`: those PyG offsets by
      :obj:`num_nodes` when batching) is relabelled like
      :obj:`edge_index`;
    * graph-level attributes (of size :obj:`1` along their concatenation
      dimension, *e.g.*, :obj:`y` of shape :obj:`[1]` or :obj:`[1, C]`,
      and scalars) are left untouched.

    Every tensor attribute must be node-level, edge-level or graph-level:
    one whose size along its concatenation dimension is neither
    :obj:`num_nodes`, nor :obj:`num_edges`, nor :obj:`1` (*e.g.*, an
    :obj:`x` with a row too few) raises a :class:`ValueError` naming it,
    since it could be neither permuted nor left as it is without leaving
    the graph inconsistent.

    Args:
        data (torch_geometric.data.Data): The graph data object.
        perm (torch.Tensor): A permutation of :obj:`range(data.num_nodes)`,
            an integer tensor of shape :obj:`[num_nodes]`.

    Returns:
        torch_geometric.data.Data: The permuted graph data object (tensors
        that needed no change are shared with :obj:`data`).

    Raises:
        ValueError: If :obj:`perm` is not a permutation of
            :obj:`range(data.num_nodes)`, if :obj:`edge_index` (or another
            tensor of node indices) holds an index outside of
            :obj:`[0, num_nodes)`, or if a tensor attribute's size matches
            neither :obj:`num_nodes`, :obj:`num_edges` nor :obj:`1`.
    """
    if not isinstance(data, Data):
        raise ValueError(f"'data' must be a 'torch_geometric.data.Data' "
                         f"object (got '{type(data).__name__}'); permute "
                         f"heterogeneous graphs one node type at a time")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValueError("Cannot infer the number of nodes of 'data'; set "
                         "'data.num_nodes' before calling 'permute'")
    perm = _check_perm(perm, num_nodes)
    for key, value in data.items():
        _check_attr(data, key, value, num_nodes)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(num_nodes, device=perm.device)

    out = copy.copy(data)

    # Connectivity first, so that edge-level attributes can follow it:
    edge_perm: Optional[Tensor] = None
    has_edge_index = False
    for key, value in data.items():
        if key == 'edge_index' and isinstance(value, Tensor) and (
                value.layout == torch.strided):
            out[key] = _relabel_edge_index(value, inv, num_nodes)
            has_edge_index = True
        elif _is_adj(data, key, value, num_nodes):
            if isinstance(value, SparseTensor):
                out[key] = value.permute(perm.to(value.device()))
                continue
            out[key], entry_perm = _permute_sparse(value, inv, num_nodes)
            if edge_perm is None:
                edge_perm = entry_perm
    if has_edge_index:
        edge_perm = None  # Edges keep their order in `edge_index`.

    for key, value in data.items():
        if key == 'edge_index' or _is_adj(data, key, value, num_nodes):
            continue
        if _is_node_index(key, value):  # e.g., `edge_label_index`, `face`.
            out[key] = _relabel_edge_index(value, inv, num_nodes)
            continue
        if data.is_node_attr(key):
            out[key] = _select(value, perm, data.__cat_dim__(key, value))
        elif edge_perm is not None and data.is_edge_attr(key):
            out[key] = _select(value, edge_perm,
                               data.__cat_dim__(key, value))

    return out


def _check_perm(perm: Tensor, num_nodes: int) -> Tensor:
    fix = ("pass a permutation of range(num_nodes), e.g., the first output "
           "of 'sort_by_cluster'")
    if not isinstance(perm, Tensor) or perm.dim() != 1:
        shape = list(perm.shape) if isinstance(perm, Tensor) else type(perm)
        raise ValueError(f"'perm' must be a one-dimensional tensor (got "
                         f"{shape}); {fix}")
    if (perm.is_floating_point() or perm.is_complex()
            or perm.dtype == torch.bool):
        raise ValueError(f"'perm' must hold integer node indices (got dtype "
                         f"{perm.dtype}); {fix}")
    if perm.numel() != num_nodes:
        raise ValueError(f"'perm' has {perm.numel()} entries but the graph "
                         f"has {num_nodes} nodes; {fix}")
    perm = perm.long()
    if num_nodes > 0:
        if int(perm.min()) < 0 or int(perm.max()) >= num_nodes:
            raise ValueError(f"'perm' holds indices outside of [0, "
                             f"{num_nodes}); {fix}")
        seen = torch.zeros(num_nodes, dtype=torch.bool, device=perm.device)
        seen[perm] = True
        if not bool(seen.all()):
            raise ValueError(f"'perm' repeats some node indices and misses "
                             f"{int((~seen).sum())} others; {fix}")
    return perm


def _is_node_index(key: str, value) -> bool:
    r"""Whether :obj:`value` holds node indices other than :obj:`edge_index`
    (the keys PyG's :meth:`~torch_geometric.data.Data.__inc__` offsets by
    :obj:`num_nodes`), as a dense tensor."""
    return (key != 'edge_index' and ('index' in key or key == 'face')
            and isinstance(value, Tensor) and value.layout == torch.strided
            and value.dim() >= 1)


def _check_attr(data: Data, key: str, value, num_nodes: int) -> None:
    r"""Raises a :class:`ValueError` naming :obj:`key` if :obj:`value` can
    be neither permuted nor left as it is: node indices outside of
    :obj:`[0, num_nodes)`, or a tensor that is not node-, edge- or
    graph-level."""
    if key == 'edge_index' and isinstance(value, Tensor) and (
            value.layout == torch.strided):
        if value.dim() != 2 or value.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, num_edges] "
                             f"(got {list(value.shape)})")
        _check_node_index(value, key, num_nodes)
        return
    if _is_node_index(key, value):
        _check_node_index(value, key, num_nodes)
        return
    if isinstance(value, SparseTensor):
        shape = tuple(value.sizes())
    elif isinstance(value, (Tensor, np.ndarray)) and value.ndim > 0:
        shape = tuple(value.shape)
    else:
        return  # Lists, strings, numbers: PyG decides by length.
    cat_dim = data.__cat_dim__(key, value)
    if not isinstance(cat_dim, int):  # A sparse matrix over node pairs:
        if isinstance(cat_dim, tuple) and any(
                shape[d] != num_nodes for d in cat_dim):
            raise ValueError(
                f"'{key}' has shape {list(shape)} but the graph has "
                f"{num_nodes} nodes, so 'permute' cannot reorder its rows "
                f"and columns; pass a [{num_nodes}, {num_nodes}] adjacency "
                f"matrix or set 'data.num_nodes' to its size")
        return
    size = shape[cat_dim]
    if size in (num_nodes, data.num_edges, 1):
        return
    raise ValueError(
        f"'{key}' has size {size} along dimension {cat_dim} (shape "
        f"{list(shape)}), which is neither the number of nodes "
        f"({num_nodes}), nor the number of edges ({data.num_edges}), nor 1 "
        f"(a graph-level attribute), so 'permute' can neither reorder it "
        f"with the nodes nor leave it as it is; give '{key}' one row per "
        f"node (or set 'data.num_nodes' to the right count), or delete it "
        f"before permuting")


def _check_node_index(value: Tensor, key: str, num_nodes: int) -> None:
    if (value.is_floating_point() or value.is_complex()
            or value.dtype == torch.bool):
        raise ValueError(f"'{key}' must hold integer node indices (got "
                         f"dtype {value.dtype}); convert it via "
                         f"'{key}.long()'")
    if value.numel() == 0:
        return
    if type(value) is not Tensor:  # e.g., `EdgeIndex`.
        value = value.as_subclass(Tensor)
    low, high = int(value.min()), int(value.max())
    if low < 0 or high >= num_nodes:
        bad = low if low < 0 else high
        raise ValueError(
            f"'{key}' holds node index {bad}, outside of [0, {num_nodes}) "
            f"(the graph has {num_nodes} nodes); fix '{key}' or set "
            f"'data.num_nodes' to the number of nodes")


def _is_adj(data: Data, key: str, value, num_nodes: int) -> bool:
    # PyG concatenates sparse adjacency matrices along both dimensions:
    if isinstance(value, SparseTensor):
        sparse = True
    else:
        sparse = isinstance(value, Tensor) and is_torch_sparse_tensor(value)
    if not sparse or data.__cat_dim__(key, value) != (0, 1):
        return False
    return value.size(0) == num_nodes and value.size(1) == num_nodes


def _relabel_edge_index(edge_index: Tensor, inv: Tensor,
                        num_nodes: int) -> Tensor:
    if isinstance(edge_index, EdgeIndex):
        out = inv.to(edge_index.device)[edge_index.as_tensor()]
        return EdgeIndex(out, sparse_size=(num_nodes, num_nodes),
                         is_undirected=edge_index.is_undirected)
    return inv.to(edge_index.device)[edge_index]


def _permute_sparse(adj: Tensor, inv: Tensor,
                    num_nodes: int) -> Tuple[Tensor, Tensor]:
    r"""Permutes rows and columns of a sparse :obj:`[N, N]` matrix. Returns
    the new matrix and, for each of its stored entries, the position of that
    entry in the input's storage order."""
    inv = inv.to(adj.device)
    layout = adj.layout

    if layout in (torch.sparse_csr, torch.sparse_csc):
        if layout == torch.sparse_csr:
            ptr, index = adj.crow_indices(), adj.col_indices()
        else:
            ptr, index = adj.ccol_indices(), adj.row_indices()
        if ptr.dim() != 1:
            raise ValueError("Batched sparse adjacency matrices are not "
                             "supported by 'permute'; permute each matrix "
                             "of the batch separately")
        # `major` is the compressed dimension (rows of CSR, columns of CSC):
        major = inv[ptr2index(ptr.long(), index.numel())]
        minor = inv[index.long()]
        order = torch.sort(major * num_nodes + minor, stable=True).indices
        new_ptr = index2ptr(major[order], num_nodes).to(ptr.dtype)
        new_index = minor[order].to(index.dtype)
        values = adj.values()[order]
        if layout == torch.sparse_csr:
            out = torch.sparse_csr_tensor(new_ptr, new_index, values,
                                          size=adj.size(),
                                          check_invariants=False)
        else:
            out = torch.sparse_csc_tensor(new_ptr, new_index, values,
                                          size=adj.size(),
                                          check_invariants=False)
        return out, order

    if layout == torch.sparse_coo:
        indices, values = adj._indices(), adj._values()
        if indices.size(0) != 2:
            raise ValueError("Sparse adjacency matrices with more than two "
                             "sparse dimensions are not supported by "
                             "'permute'")
        row, col = inv[indices[0]], inv[indices[1]]
        order = torch.sort(row * num_nodes + col, stable=True).indices
        indices = torch.stack([row[order], col[order]], dim=0)
        out = torch.sparse_coo_tensor(indices, values[order], size=adj.size(),
                                      is_coalesced=adj.is_coalesced())
        return out, order

    raise ValueError(f"Sparse adjacency matrices with layout {layout} are "
                     f"not supported by 'permute'; convert them via "
                     f"'.to_sparse_csr()'")


def _select(value, index: Tensor, dim):
    if isinstance(value, Tensor) and value.layout == torch.sparse_csr and (
            dim == 0):
        return index_select_rows(value, index)  # Sparse node features.
    if isinstance(value, np.ndarray):
        return np.take(value, index.cpu().numpy(), axis=dim)
    if isinstance(value, Tensor):
        index = index.to(value.device)
        if isinstance(value, EdgeIndex) or type(value) is not Tensor:
            value = value.as_subclass(Tensor)
    return select(value, index, dim)
