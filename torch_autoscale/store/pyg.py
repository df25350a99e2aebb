r"""A :class:`~torch_autoscale.store.GraphStore` seen through PyG's remote
backend interfaces, :class:`~torch_geometric.data.FeatureStore` and
:class:`~torch_geometric.data.GraphStore`, so that PyG's own loaders (*e.g.*,
:class:`~torch_geometric.loader.NeighborLoader`) read a graph kept on disk.

The GAS loaders of :mod:`torch_autoscale.loader` do not go through these
interfaces: they slice contiguous cluster ranges of the CSR and gather the
halo with one native call per mini-batch, which PyG's per-attribute
requests would split into many; they take the store's memory-mapped arrays
directly (:meth:`~torch_autoscale.store.GraphStore.to_data`)."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import EdgeAttr, FeatureStore, TensorAttr
from torch_geometric.data import GraphStore as PyGGraphStore
from torch_geometric.data.graph_store import EdgeLayout

from .format import GraphStore

_READ_ONLY = ("a torch_autoscale graph store is read-only through PyG's "
              "interfaces; write a new one with GraphStoreWriter")
_STRUCTURE = ('rowptr', 'col', 'value')


class StoreFeatureStore(FeatureStore):
    r"""The node arrays of a :class:`~torch_autoscale.store.GraphStore`
    (features, labels, masks) as a PyG
    :class:`~torch_geometric.data.FeatureStore` of a homogeneous graph
    (:obj:`group_name=None`, :obj:`attr_name` the array's name). Reads
    gather rows of the memory-mapped arrays.

    Args:
        store (GraphStore): The graph.
    """
    def __init__(self, store: GraphStore):
        super().__init__()
        self.store = store

    def _put_tensor(self, tensor: Tensor, attr: TensorAttr) -> bool:
        raise ValueError(_READ_ONLY)

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        raise ValueError(_READ_ONLY)

    def _get_tensor(self, attr: TensorAttr) -> Optional[Tensor]:
        if attr.attr_name not in self.store or \
                attr.attr_name in _STRUCTURE:
            return None
        tensor = self.store[attr.attr_name]
        index = attr.index
        if index is None:
            return tensor
        if isinstance(index, Tensor):
            return tensor.index_select(0, index.long())
        return tensor[index]

    def _get_tensor_size(self, attr: TensorAttr) -> Optional[Tuple]:
        if attr.attr_name not in self.store:
            return None
        return tuple(self.store[attr.attr_name].shape)

    def get_all_tensor_attrs(self) -> List[TensorAttr]:
        return [TensorAttr(group_name=None, attr_name=name)
                for name in self.store.names if name not in _STRUCTURE]


class StoreGraphStore(PyGGraphStore):
    r"""The adjacency of a :class:`~torch_autoscale.store.GraphStore` as a
    PyG :class:`~torch_geometric.data.GraphStore` of a homogeneous graph
    (:obj:`edge_type=None`). The store keeps the incoming edges of every node
    (rows are targets), which is PyG's sorted :obj:`"csc"` layout: it is
    handed out memory-mapped, as it is; other layouts are computed on
    request (reading every edge).

    Args:
        store (GraphStore): The graph.
    """
    def __init__(self, store: GraphStore):
        super().__init__()
        self.store = store

    def _put_edge_index(self, edge_index, edge_attr: EdgeAttr) -> bool:
        raise ValueError(_READ_ONLY)

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        raise ValueError(_READ_ONLY)

    def _get_edge_index(self, edge_attr: EdgeAttr):
        rowptr, col = self.store['rowptr'], self.store['col']
        if edge_attr.layout == EdgeLayout.CSC:
            return rowptr, col
        dst = torch.repeat_interleave(
            torch.arange(self.store.num_nodes), rowptr.diff())
        if edge_attr.layout == EdgeLayout.COO:
            return col, dst
        order = torch.argsort(col * max(1, self.store.num_nodes) + dst,
                              stable=True)  # CSR: by source.
        ptr = torch.zeros(self.store.num_nodes + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(col, minlength=self.store.num_nodes), 0,
                     out=ptr[1:])
        return ptr, dst[order]

    def get_all_edge_attrs(self) -> List[EdgeAttr]:
        n = self.store.num_nodes
        return [EdgeAttr(edge_type=None, layout=EdgeLayout.CSC,
                         is_sorted=True, size=(n, n))]


def to_pyg(store: GraphStore) -> Tuple[StoreFeatureStore, StoreGraphStore]:
    r"""The :obj:`(feature_store, graph_store)` pair PyG's loaders take,
    *e.g.*, :obj:`NeighborLoader(to_pyg(store), num_neighbors=[10, 10],
    batch_size=1024)`."""
    return StoreFeatureStore(store), StoreGraphStore(store)
