r"""One call from a PyG graph to everything GNNAutoScale trains on."""
import copy
import operator
import warnings
from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor, select

from torch_autoscale.partition import (
    PARTITION_METHODS,
    partition,
    permute,
    sort_by_cluster,
)
from torch_autoscale.utils.sparse import (
    index_select_rows,
    sparse_csr,
    to_csr,
)

from .node_order import ORIGINAL, PERMUTED, NodeOrder, NodeOrderTensor
from .subgraph_loader import EvalSubgraphLoader, SubgraphLoader

NORMALIZATIONS = (None, 'gcn')
r"""The values :class:`PartitionedData` takes for :obj:`normalize`."""


class PartitionedData:
    r"""Partitions a graph and lays it out for training with historical
    embeddings (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_), in one
    call: the counterpart of PyG's
    :class:`~torch_geometric.loader.ClusterData`.

    It clusters the graph (:func:`~torch_autoscale.partition.partition`,
    METIS by default), builds the adjacency :obj:`adj_t` once as a
    :obj:`torch.sparse_csr` tensor (rows are targets), optionally normalizes
    it on the *whole* graph, and renumbers the nodes so that every cluster is
    a contiguous range (:func:`~torch_autoscale.partition.sort_by_cluster`
    and :func:`~torch_autoscale.partition.permute`). The result holds

    * :obj:`data`: the permuted graph. Every node-level attribute (:obj:`x`,
      :obj:`y`, :obj:`train_mask`, ...) is in the new order, :obj:`adj_t`
      replaces :obj:`edge_index`, and :obj:`data.edge_weight` (if any) has
      become the values of :obj:`adj_t`, as in PyG's
      :class:`~torch_geometric.transforms.ToSparseTensor`; further edge-level
      attributes follow the entries of :obj:`adj_t`;
    * :obj:`ptr`: the cluster boundaries, cluster :obj:`k` is nodes
      :obj:`ptr[k]` to :obj:`ptr[k + 1] - 1` of :obj:`data`;
    * :obj:`perm`: new node :obj:`i` is old node :obj:`perm[i]`, and
      :obj:`inv_perm`: old node :obj:`i` is new node :obj:`inv_perm[i]`;
    * :meth:`loader` and :meth:`eval_loader`, the training and evaluation
      loaders over :obj:`data` and :obj:`ptr`;
    * :meth:`to_original` and :meth:`to_permuted`, which move any per-node
      tensor between the two node orders.

    Model outputs (of :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference`
    or a full-batch forward on :obj:`data`) come in the permuted order. They
    match :obj:`data.y` and :obj:`data.*_mask` as they are; map them with
    :meth:`to_original` to compare them with anything kept from the input
    graph, and bring masks or labels from outside with :meth:`to_permuted`.
    The output of :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference`
    over :meth:`eval_loader` knows its order (a
    :class:`~torch_autoscale.loader.NodeOrderTensor`): indexing it with a
    mask of the input graph, or comparing it with the input graph's labels,
    raises :class:`~torch_autoscale.errors.NodeOrderError` instead of
    returning a silently wrong accuracy; so does mixing the output of
    :meth:`to_original` with :obj:`data`'s masks and labels.

    Models whose convolutions do not normalize the adjacency themselves,
    :class:`~torch_autoscale.nn.models.GCN`,
    :class:`~torch_autoscale.nn.models.GCNII` and
    :class:`~torch_autoscale.nn.models.APPNP`, need
    :obj:`normalize="gcn"`: a mini-batch must see the degrees of the whole
    graph, so normalizing per batch would be wrong. Models that read the
    adjacency's structure only (GraphSAGE, GAT, GIN, PNA) take the
    default, :obj:`normalize=None`.

    Example:

    .. code-block:: python

        from torch_autoscale.loader import PartitionedData

        pdata = PartitionedData(data, num_parts=40, normalize='gcn')
        model = GCN(pdata.data.num_nodes, ...)
        for batch in pdata.loader(batch_size=10):   # shuffled clusters
            out = model(batch.data.x, batch.data.adj_t, batch)
            ...
        out = model.mini_inference(pdata.eval_loader(batch_size=10))
        acc = accuracy(out, pdata.data.y, pdata.data.test_mask)  # permuted
        out = pdata.to_original(out)  # row i is node i of `data`

    The same, step by step (for a different adjacency or layout):

    .. code-block:: python

        cluster = partition(data, num_parts=40, method='metis')
        perm, ptr = sort_by_cluster(cluster, num_parts=40)
        data.adj_t, _ = gcn_norm(
            csr_adj_t(data.edge_index, data.num_nodes), add_self_loops=True)
        del data.edge_index
        data = permute(data, perm)
        loader = SubgraphLoader(data, ptr, batch_size=10, shuffle=True)

    Args:
        data (torch_geometric.data.Data): The graph, with an
            :obj:`edge_index` (or a sparse :obj:`adj_t`, rows are targets).
            It is not modified.
        num_parts (int): The number of clusters, in
            :obj:`[1, data.num_nodes]`.
        method (str, optional): How to cluster, one of
            :obj:`torch_autoscale.partition.PARTITION_METHODS`
            (:obj:`"metis"`, :obj:`"lpmetis"`, :obj:`"random"`,
            :obj:`"contiguous"`). (default: :obj:`"metis"`)
        normalize (str, optional): How to normalize :obj:`adj_t` before the
            graph is split: :obj:`None` keeps its values (ones, or
            :obj:`data.edge_weight`), :obj:`"gcn"` applies
            :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm` with
            self-loops, :math:`\hat{\mathbf{D}}^{-1/2} \hat{\mathbf{A}}
            \hat{\mathbf{D}}^{-1/2}`. (default: :obj:`None`)
        seed (int, optional): The seed of the randomized methods
            (:obj:`"lpmetis"`, :obj:`"random"`). :obj:`"metis"` ignores
            it and gives the same clusters on every call; pass
            :obj:`cluster=metis(..., seed=seed)` for clusters that vary.
            (default: :obj:`0`)
        cluster (torch.Tensor, optional): The cluster of every node, in
            :obj:`[0, num_parts)`, to use instead of partitioning (*e.g.*,
            one computed once and shared between processes).
            (default: :obj:`None`)
        **kwargs (optional): Further arguments of
            :func:`~torch_autoscale.partition.partition`, such as
            :func:`~torch_autoscale.partition.lpmetis`' options.

    Raises:
        ValueError: If :obj:`num_parts` is not in
            :obj:`[1, data.num_nodes]`, :obj:`method` or :obj:`normalize` is
            unknown, :obj:`cluster` does not fit the graph, or :obj:`data`
            has no connectivity.
    """
    def __init__(self, data: Data, num_parts: int, method: str = 'metis',
                 normalize: Optional[str] = None, seed: Optional[int] = 0,
                 cluster: Optional[Tensor] = None, **kwargs):
        name = type(self).__name__
        if not isinstance(data, Data):
            raise ValueError(f"{name}: 'data' must be a "
                             f"'torch_geometric.data.Data' object (got "
                             f"'{type(data).__name__}')")
        num_nodes = data.num_nodes
        if not num_nodes:
            raise ValueError(f"{name}: 'data' has no nodes (or their number "
                             f"cannot be inferred); set 'data.num_nodes'")
        try:
            num_parts = operator.index(num_parts)
        except TypeError:
            raise ValueError(f"{name}: 'num_parts' must be an integer (got "
                             f"{num_parts!r})") from None
        if not 1 <= num_parts <= num_nodes:
            raise ValueError(f"{name}: 'num_parts' must lie in [1, "
                             f"{num_nodes}] (the number of nodes); got "
                             f"{num_parts}. Pass fewer parts")
        if method not in PARTITION_METHODS:
            methods = ', '.join(repr(m) for m in PARTITION_METHODS)
            raise ValueError(f"{name}: unknown partition method {method!r}; "
                             f"pass one of {methods}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"{name}: unknown normalization {normalize!r}; "
                             f"pass None or 'gcn'")
        if 'edge_index' not in data and 'adj_t' not in data:
            raise ValueError(f"{name}: 'data' has neither 'edge_index' nor "
                             f"'adj_t'; pass a graph with connectivity")

        if kwargs.get('return_coarse'):
            raise ValueError(f"{name}: 'return_coarse' has no place here; "
                             f"call 'cluster, coarse = lpmetis(..., "
                             f"return_coarse=True)' and pass "
                             f"'cluster=cluster'")
        self.method: Optional[str] = method if cluster is None else None
        if cluster is None:
            cluster = partition(data, num_parts, method=method, seed=seed,
                                **kwargs)
        else:
            if kwargs:
                raise ValueError(f"{name}: partition arguments "
                                 f"({', '.join(sorted(kwargs))}) have no "
                                 f"effect with a given 'cluster'")
            cluster = _check_cluster(cluster, num_nodes, num_parts, name)
        perm, ptr = sort_by_cluster(cluster, num_parts)

        out = _with_csr_adj_t(data, num_nodes, normalize, name)
        self.data: Data = permute(out, perm)
        self.ptr: Tensor = ptr
        self.perm: Tensor = perm
        self.inv_perm: Tensor = torch.empty_like(perm)
        self.inv_perm[perm] = torch.arange(num_nodes, device=perm.device)
        self.cluster: Tensor = cluster
        self.num_parts = num_parts
        self.normalize = normalize
        # Outputs in the permuted order must not meet the input graph's
        # masks and labels unmapped (nothing to guard when nothing moved).
        self.node_order: Optional[NodeOrder] = None
        if not torch.equal(perm, torch.arange(num_nodes,
                                              device=perm.device)):
            self.node_order = NodeOrder('pdata')
            for graph, order in ((data, ORIGINAL), (self.data, PERMUTED)):
                for tensor in _node_tensors(graph, num_nodes):
                    self.node_order.register(tensor, order)

    @property
    def num_nodes(self) -> int:
        r"""The number of nodes of the graph."""
        return self.perm.numel()

    def __len__(self) -> int:
        return self.num_parts

    def loader(self, batch_size: int = 1, shuffle: bool = True,
               **kwargs) -> SubgraphLoader:
        r"""The training loader: mini-batches of :obj:`batch_size` clusters
        with their 1-hop halo.

        Args:
            batch_size (int, optional): The number of clusters per
                mini-batch. (default: :obj:`1`)
            shuffle (bool, optional): Whether to shuffle the clusters every
                epoch. (default: :obj:`True`)
            **kwargs (optional): Further arguments of
                :class:`~torch_autoscale.loader.SubgraphLoader`, such as
                :obj:`num_workers`.
        """
        return SubgraphLoader(self.data, self.ptr, batch_size=batch_size,
                              shuffle=shuffle, **kwargs)

    def eval_loader(self, batch_size: int = 1,
                    **kwargs) -> EvalSubgraphLoader:
        r"""The loader of layer-wise inference
        (:meth:`~torch_autoscale.nn.ScalableGNN.mini_inference`): every
        cluster once, in order, :obj:`batch_size` per mini-batch.

        Args:
            batch_size (int, optional): The number of clusters per
                mini-batch. (default: :obj:`1`)
            **kwargs (optional): Further arguments of
                :class:`~torch_autoscale.loader.EvalSubgraphLoader`.
        """
        loader = EvalSubgraphLoader(self.data, self.ptr,
                                    batch_size=batch_size, **kwargs)
        loader.node_order = self.node_order
        return loader

    def to_original(self, out: Tensor, dim: int = 0) -> Tensor:
        r"""Maps a per-node tensor from the permuted node order (that of
        :obj:`data` and of model outputs) back to the order of the graph
        that was passed in: row :obj:`i` of the result belongs to input node
        :obj:`i`.

        Args:
            out (torch.Tensor): One entry per node along :obj:`dim`, *e.g.*,
                the output of
                :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference`.
            dim (int, optional): The node dimension. (default: :obj:`0`)

        Returns:
            A :class:`~torch_autoscale.loader.NodeOrderTensor` in the
            original order (a plain tensor if the permutation is the
            identity, or for sparse :obj:`out`).
        """
        return self._tag(
            self._reorder(out, self.inv_perm, dim, 'to_original', 'out'),
            ORIGINAL)

    def _tag(self, t: Tensor, order: str) -> Tensor:
        if isinstance(t, NodeOrderTensor):
            t = t.as_subclass(Tensor)  # Now in the other order.
        if self.node_order is None or t.layout != torch.strided:
            return t
        return self.node_order.tag(t, order)

    def to_permuted(self, t: Tensor, dim: int = 0) -> Tensor:
        r"""Maps a per-node tensor from the order of the graph that was
        passed in to the permuted order of :obj:`data`, *e.g.*, labels or
        masks kept outside of :obj:`data`. The inverse of
        :meth:`to_original`. (To map node *indices*, such as a test index
        set, use :obj:`inv_perm[index]`.)

        Args:
            t (torch.Tensor): One entry per node along :obj:`dim`.
            dim (int, optional): The node dimension. (default: :obj:`0`)

        Returns:
            A :class:`~torch_autoscale.loader.NodeOrderTensor` in the
            permuted order (a plain tensor if the permutation is the
            identity, or for sparse :obj:`t`).
        """
        return self._tag(self._reorder(t, self.perm, dim, 'to_permuted', 't'),
                         PERMUTED)

    def _reorder(self, t: Any, index: Tensor, dim: int, method: str,
                 arg: str) -> Tensor:
        where = f"{type(self).__name__}.{method}"
        if not isinstance(t, Tensor):
            raise ValueError(f"{where}: '{arg}' must be a tensor with one "
                             f"entry per node (got {type(t).__name__})")
        if t.dim() == 0 or not -t.dim() <= dim < t.dim():
            raise ValueError(f"{where}: 'dim' ({dim}) is not a dimension of "
                             f"'{arg}' (shape {list(t.shape)})")
        if t.size(dim) != self.num_nodes:
            raise ValueError(f"{where}: '{arg}' has {t.size(dim)} entries "
                             f"along dimension {dim} but the graph has "
                             f"{self.num_nodes} nodes; pass a per-node "
                             f"tensor of this graph (or set 'dim')")
        if t.layout == torch.sparse_csr and dim in (0, -2):
            return index_select_rows(t, index)  # Sparse node features.
        return select(t, index.to(t.device), dim)

    def __repr__(self) -> str:
        norm = f', normalize={self.normalize!r}' if self.normalize else ''
        return (f'{type(self).__name__}(num_nodes={self.num_nodes}, '
                f'num_parts={self.num_parts}, method={self.method!r}{norm})')


def _node_tensors(data: Data, num_nodes: int) -> list:
    return [
        attr for key, attr in data.items()
        if isinstance(attr, Tensor) and attr.layout == torch.strided
        and attr.dim() > 0 and attr.size(0) == num_nodes
        and data.is_node_attr(key)
    ]


def _check_cluster(cluster: Any, num_nodes: int, num_parts: int,
                   name: str) -> Tensor:
    fix = (f"pass one part id in [0, {num_parts}) per node, e.g., the "
           f"output of torch_autoscale.partition.partition")
    if not isinstance(cluster, Tensor) or cluster.dim() != 1 or (
            cluster.numel() != num_nodes):
        shape = (list(cluster.shape) if isinstance(cluster, Tensor) else
                 type(cluster).__name__)
        raise ValueError(f"{name}: 'cluster' must be a tensor of shape "
                         f"[{num_nodes}] (got {shape}); {fix}")
    if cluster.is_floating_point() or cluster.dtype == torch.bool:
        raise ValueError(f"{name}: 'cluster' must hold integer part ids "
                         f"(got dtype {cluster.dtype}); {fix}")
    if int(cluster.min()) < 0 or int(cluster.max()) >= num_parts:
        raise ValueError(f"{name}: 'cluster' holds part ids outside of "
                         f"[0, {num_parts}); {fix}")
    return cluster


def _with_csr_adj_t(data: Data, num_nodes: int, normalize: Optional[str],
                    name: str) -> Data:
    r"""A shallow copy of :obj:`data` whose connectivity is a
    :obj:`torch.sparse_csr` :obj:`adj_t` (normalized if asked), its edge-level
    attributes aligned with the entries of :obj:`adj_t`, and no
    :obj:`edge_index` (the layout :func:`permute` then carries over)."""
    out = copy.copy(data)
    if 'edge_index' in data:
        edge_index = data.edge_index
        num_edges = edge_index.size(1)
        # The CSR arrays of `torch_autoscale.utils.csr_adj_t`, plus the
        # order of the edges, so that edge attributes follow their entries.
        rowptr, col, _, edge_perm = to_csr(
            Data(edge_index=edge_index, num_nodes=num_nodes))
        edge_weight = data.get('edge_weight')
        if isinstance(edge_weight, Tensor) and edge_weight.dim() == 1 and (
                edge_weight.numel() == num_edges):
            value = edge_weight[edge_perm]
            del out.edge_weight
        else:
            value = torch.ones(col.numel())
        edge_keys = [
            key for key, attr in data.items()
            if key not in ('edge_index', 'edge_weight', 'adj_t')
            and isinstance(attr, Tensor) and data.is_edge_attr(key)
            and attr.dim() > 0
            and attr.size(data.__cat_dim__(key, attr)) == num_edges
        ]
        for key in edge_keys:
            out[key] = select(data[key], edge_perm,
                              data.__cat_dim__(key, data[key]))
        adj_t = sparse_csr(rowptr, col, value, (num_nodes, num_nodes))
        del out.edge_index
    else:
        adj_t = data.adj_t
        if isinstance(adj_t, SparseTensor):
            adj_t = adj_t.to_torch_sparse_csr_tensor()
        elif isinstance(adj_t, Tensor) and is_torch_sparse_tensor(adj_t):
            adj_t = adj_t.to_sparse_csr()
        else:
            raise ValueError(f"{name}: 'data.adj_t' must be a sparse "
                             f"matrix (got {type(adj_t).__name__}); pass an "
                             f"'edge_index' instead")
        edge_keys = [
            key for key, attr in data.items()
            if key != 'adj_t' and isinstance(attr, Tensor)
            and data.is_edge_attr(key)
        ]
    if normalize == 'gcn':
        if edge_keys:
            raise ValueError(f"{name}: normalize='gcn' adds self-loops, "
                             f"which the edge attributes "
                             f"{', '.join(repr(k) for k in edge_keys)} cannot "
                             f"follow; delete them from 'data' (a GCN does "
                             f"not read them) or normalize yourself")
        with warnings.catch_warnings():  # PyG's own CSR tensors.
            warnings.filterwarnings('ignore', '.*Sparse invariant checks.*')
            adj_t, _ = gcn_norm(adj_t, add_self_loops=True)
    out.adj_t = adj_t
    return out
