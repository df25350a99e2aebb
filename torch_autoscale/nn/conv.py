r"""PyG convolutions whose sparse products reuse one cached transpose of the
adjacency in the backward pass (see :func:`torch_autoscale.utils.spmm`).

They keep names of their own: PyG compiles every convolution's
:meth:`propagate` from its class's source, looked up by class name."""
from torch import Tensor
from torch_geometric.nn import GCN2Conv as PyGGCN2Conv
from torch_geometric.nn import GCNConv as PyGGCNConv
from torch_geometric.typing import Adj

from torch_autoscale.nn.linear import sparse_input_linear
from torch_autoscale.utils.sparse import spmm


class _CachedTransposeSpMM:
    # Sum aggregation through torch_autoscale.utils.spmm; mixed into a PyG
    # convolution ahead of it.
    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        if self.aggr != 'add':
            return super().message_and_aggregate(adj_t, x)
        return spmm(adj_t, x)


class CachedGCNConv(_CachedTransposeSpMM, PyGGCNConv):
    r""":class:`torch_geometric.nn.conv.GCNConv` with the adjacency's
    transpose cached for the backward pass of sum aggregation, and of sparse
    input features for the backward pass of its linear transform."""
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lin = sparse_input_linear(self.lin)


class CachedGCN2Conv(_CachedTransposeSpMM, PyGGCN2Conv):
    r""":class:`torch_geometric.nn.conv.GCN2Conv` with the adjacency's
    transpose cached for the backward pass of sum aggregation."""
