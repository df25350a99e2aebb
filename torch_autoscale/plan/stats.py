r"""The sizes memory depends on: the graph's (:class:`GraphStats`), the
model's (:class:`ModelSpec`) and those of the mini-batches of a partition
(:class:`HaloStats`, measured by :func:`halo_stats`)."""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.index import ptr2index

if TYPE_CHECKING:
    from torch_autoscale.store import GraphStore


@dataclass(frozen=True)
class GraphStats:
    r"""The sizes of a graph that memory depends on.

    A graph in memory is resident in host memory for the whole of
    training (:attr:`graph_bytes`). A graph memory-mapped from a
    :class:`~torch_autoscale.store.GraphStore` is not: its
    :attr:`store_bytes` are on disk, and the operating system keeps the
    pages a mini-batch reads in its page cache, which it reclaims when
    memory runs short, so they are not charged to the host budget; only
    the :attr:`resident_bytes` held in memory are, and the rows of each
    mini-batch (see :func:`~torch_autoscale.plan.estimate`).

    Args:
        num_nodes (int): The number of nodes.
        num_edges (int): The number of stored adjacency entries (directed,
            self-loops included).
        num_features (int): The input feature width.
        feature_bytes (int, optional): The bytes of the node features
            (default: dense float32, :obj:`num_nodes * num_features * 4`).
        store_bytes (int, optional): The bytes of the graph's arrays that
            are memory-mapped from a graph store (all its arrays, labels
            and masks included). (default: :obj:`None`, a graph in memory)
        resident_bytes (int, optional): The bytes of the features and the
            adjacency that are held in host memory throughout training.
            (default: :obj:`None`, :attr:`graph_bytes` for a graph in
            memory, :obj:`0` for a store)
    """
    num_nodes: int
    num_edges: int
    num_features: int
    feature_bytes: Optional[int] = None
    store_bytes: Optional[int] = None
    resident_bytes: Optional[int] = None

    def __post_init__(self):
        for name in ('num_nodes', 'num_edges', 'num_features'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"'{name}' must be a non-negative integer "
                                 f"(got {value!r})")
        for name in ('store_bytes', 'resident_bytes'):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, int) or
                                      value < 0):
                raise ValueError(f"'{name}' must be a non-negative integer "
                                 f"or None (got {value!r})")
        if self.feature_bytes is None:
            object.__setattr__(self, 'feature_bytes',
                               4 * self.num_nodes * self.num_features)
        if self.resident_bytes is None:
            object.__setattr__(self, 'resident_bytes',
                               0 if self.on_disk else self.graph_bytes)

    @property
    def graph_bytes(self) -> int:
        r"""Host bytes of the features and the CSR adjacency (int64 column
        indices and row pointers, float32 values)."""
        return (self.feature_bytes + 12 * self.num_edges +
                8 * (self.num_nodes + 1))

    @property
    def on_disk(self) -> bool:
        r"""Whether the graph is memory-mapped from a graph store (then
        only a mini-batch's rows and :attr:`resident_bytes` count in host
        memory)."""
        return self.store_bytes is not None

    @classmethod
    def from_data(cls, data: Data) -> 'GraphStats':
        r"""The statistics of a PyG graph with :obj:`x` and :obj:`adj_t` or
        :obj:`edge_index`.

        Arrays memory-mapped from a graph store, as
        :meth:`~torch_autoscale.store.GraphStore.to_data` gives them, are
        recognised and counted in :attr:`store_bytes` instead of host
        memory; copies of them count as memory.
        """
        return _graph_stats(data, _store_mapped())

    @classmethod
    def from_store(cls, store: 'GraphStore') -> 'GraphStats':
        r"""The statistics of the graph of a
        :class:`~torch_autoscale.store.GraphStore`: :attr:`store_bytes`
        are its :attr:`~torch_autoscale.store.GraphStore.nbytes`, and
        :attr:`resident_bytes` what
        :meth:`~torch_autoscale.store.GraphStore.to_data` holds in memory
        (the adjacency's values when the store has none).

        Args:
            store (GraphStore): The store.
        """
        return store_stats(store, store.to_data())


def store_stats(store: 'GraphStore', data: Data) -> GraphStats:
    r"""The :class:`GraphStats` of :obj:`data`, the
    :meth:`~torch_autoscale.store.GraphStore.to_data` of :obj:`store`: its
    tensors that are the store's arrays are on disk, the others (such as
    the adjacency's values when the store has none) in memory."""
    ptrs = {store[name].untyped_storage().data_ptr()
            for name in store.names if store[name].numel() > 0}
    return _graph_stats(data,
                        lambda t: t.untyped_storage().data_ptr() in ptrs,
                        store_bytes=store.nbytes)


def _graph_stats(data: Data, mapped: Callable[[Tensor], bool],
                 store_bytes: Optional[int] = None) -> GraphStats:
    r"""The :class:`GraphStats` of :obj:`data`, whose tensors for which
    :obj:`mapped` holds are memory-mapped from a store (the sum of their
    bytes is its :obj:`store_bytes` unless given)."""
    if 'adj_t' in data:
        adj = data.adj_t
        num_edges = (adj._nnz() if adj.layout != torch.strided else int(
            (adj != 0).sum()))
    elif 'edge_index' in data:
        num_edges = data.edge_index.size(1)
    else:
        raise ValueError("'data' needs an 'adj_t' or an 'edge_index'")
    x = data.x
    num_features, feature_bytes = 0, 0
    if x is not None and x.layout == torch.sparse_csr:
        feature_bytes = (x.values().numel() * x.element_size() +
                         8 * x.col_indices().numel() +
                         8 * x.crow_indices().numel())
        num_features = x.size(-1)
    elif x is not None:
        feature_bytes = x.numel() * x.element_size()
        num_features = 1 if x.dim() == 1 else x.size(-1)
    if store_bytes is None:
        arrays: Dict[int, int] = {}  # Storage address: bytes.
        for _, value in data.items():
            for t in _parts(value):
                if _nbytes(t) > 0 and mapped(t):
                    storage = t.untyped_storage()
                    arrays[storage.data_ptr()] = storage.nbytes()
        if not arrays:  # In memory: as always.
            return GraphStats(data.num_nodes, num_edges, num_features,
                              feature_bytes)
        store_bytes = sum(arrays.values())
    resident = 0
    if x is not None:
        resident += sum(_nbytes(t) for t in _parts(x) if not mapped(t))
    if 'adj_t' in data and data.adj_t.layout == torch.sparse_csr:
        resident += sum(_nbytes(t) for t in _parts(data.adj_t)
                        if not mapped(t))
    else:  # Adjacencies of other kinds are charged as a CSR in memory.
        resident += 12 * num_edges + 8 * (data.num_nodes + 1)
    return GraphStats(data.num_nodes, num_edges, num_features,
                      feature_bytes, store_bytes, resident)


def _parts(value) -> List[Tensor]:
    r"""The dense CPU tensors that hold :obj:`value`: itself, or the
    indices and values of a CSR tensor."""
    if not isinstance(value, Tensor) or value.device.type != 'cpu':
        return []
    if value.layout == torch.sparse_csr:
        return [value.crow_indices(), value.col_indices(), value.values()]
    if value.layout != torch.strided:
        return []
    return [value]


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


def _store_mapped() -> Callable[[Tensor], bool]:
    r"""Whether a tensor's memory is an array of a graph store, mapped from
    its file (:func:`~torch_autoscale.store.format.is_store_mapped`: the
    store records its mappings, so that a replaced attribute, *e.g.*,
    normalized features in memory, counts as memory whatever object it
    sits in)."""
    from torch_autoscale.store.format import is_store_mapped
    return is_store_mapped


@dataclass(frozen=True)
class ModelSpec:
    r"""The shape of a GAS model, as the estimator sees it: a stack of
    :obj:`num_layers` message-passing layers whose inputs are
    :obj:`in_channels`, then :obj:`hidden_channels` wide, owning one
    history per hidden layer.

    Args:
        num_layers (int): The number of message-passing layers.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width (and history width).
        out_channels (int): The output width.
        num_parameters (int, optional): The number of parameters (default:
            one :obj:`in x out` weight and bias per layer).
        saved_per_input (float, optional): The bytes autograd keeps per
            input element (row times width) of a layer: :obj:`4` for the
            float32 input a linear transform keeps; add :obj:`4` for a
            dropout mask. (default: :obj:`4.0`)
        saved_per_output (float, optional): The bytes kept per output
            element: :obj:`4` for the output an activation such as ReLU
            keeps. (default: :obj:`4.0`)
        optimizer_states (int, optional): Tensors the optimizer keeps per
            parameter (:obj:`2` for Adam). (default: :obj:`2`)
    """
    num_layers: int
    in_channels: int
    hidden_channels: int
    out_channels: int
    num_parameters: Optional[int] = None
    saved_per_input: float = 4.0
    saved_per_output: float = 4.0
    optimizer_states: int = 2

    def __post_init__(self):
        for name in ('num_layers', 'in_channels', 'hidden_channels',
                     'out_channels'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive integer (got "
                                 f"{value!r})")
        if self.num_parameters is None:
            object.__setattr__(
                self, 'num_parameters',
                sum(i * o + o for i, o in zip(self.widths[:-1],
                                              self.widths[1:])))

    @property
    def widths(self) -> List[int]:
        r"""The input width of every layer, then the output width."""
        return ([self.in_channels] + [self.hidden_channels] *
                (self.num_layers - 1) + [self.out_channels])

    @property
    def num_histories(self) -> int:
        r"""The number of histories: one per hidden layer."""
        return self.num_layers - 1

    @classmethod
    def from_model(cls, model: torch.nn.Module, **kwargs) -> 'ModelSpec':
        r"""The spec of a :class:`~torch_autoscale.nn.ScalableGNN` with
        :obj:`in_channels`, :obj:`hidden_channels`, :obj:`out_channels` and
        :obj:`num_layers` attributes (as the bundled models have)."""
        try:
            args = dict(num_layers=model.num_layers,
                        in_channels=model.in_channels,
                        hidden_channels=model.hidden_channels,
                        out_channels=model.out_channels)
        except AttributeError as e:
            raise ValueError(f"cannot read the widths of "
                             f"'{type(model).__name__}' ({e}); build a "
                             f"ModelSpec by hand") from None
        args['num_parameters'] = sum(p.numel() for p in model.parameters())
        args.update(kwargs)
        return cls(**args)


@dataclass(frozen=True)
class HaloStats:
    r"""The sizes of the mini-batches of a partition: in-batch nodes, halo
    nodes and adjacency rows' entries (mean and largest over the batches),
    as :func:`halo_stats` measures them.

    Args:
        num_parts (int): The number of clusters.
        batch_size (int): Clusters per mini-batch.
        num_batches (int): The number of mini-batches of an epoch.
        mean_nodes (float): The mean number of in-batch nodes.
        mean_halo (float): The mean number of halo nodes.
        mean_edges (float): The mean number of adjacency entries of the
            in-batch rows.
        max_nodes (int): The largest number of in-batch nodes.
        max_halo (int): The largest number of halo nodes.
        max_edges (int): The largest number of adjacency entries.
        max_rows (int): The largest in-batch plus halo count.
    """
    num_parts: int
    batch_size: int
    num_batches: int
    mean_nodes: float
    mean_halo: float
    mean_edges: float
    max_nodes: int
    max_halo: int
    max_edges: int
    max_rows: int

    @property
    def halo_ratio(self) -> float:
        r"""Halo nodes per in-batch node, on average."""
        return self.mean_halo / max(self.mean_nodes, 1.0)


def halo_stats(edge_index: Tensor, ptr: Tensor, batch_size: int,
               num_nodes: Optional[int] = None) -> HaloStats:
    r"""The in-batch, halo and edge counts of every mini-batch of
    :obj:`batch_size` consecutive clusters of a graph permuted by cluster
    (boundaries :obj:`ptr`), as :class:`~torch_autoscale.loader.
    SubgraphLoader` builds them without shuffling.

    Args:
        edge_index (torch.Tensor): The permuted graph's edges
            :obj:`[2, num_edges]` (sources in row 0, targets in row 1).
        ptr (torch.Tensor): The cluster boundaries: an integer tensor
            from :obj:`0` to :obj:`num_nodes`, non-decreasing.
        batch_size (int): Clusters per mini-batch.
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, the largest index of :obj:`edge_index` plus one;
            pass it when the last nodes have no edges)

    Raises:
        ValueError: If :obj:`ptr` does not partition the graph's nodes, or
            an argument is malformed (the message names it).
    """
    ptr, num_nodes = _check_halo_args(edge_index, ptr, batch_size,
                                      num_nodes)
    num_parts = ptr.numel() - 1
    cluster = torch.repeat_interleave(torch.arange(num_parts), ptr.diff())
    group = cluster // batch_size
    num_batches = int(group.max()) + 1 if num_nodes > 0 else 0
    src, dst = edge_index[0], edge_index[1]
    g_dst = group[dst]
    nodes = torch.bincount(group, minlength=num_batches)
    edges = torch.bincount(g_dst, minlength=num_batches)
    outside = group[src] != g_dst
    key = torch.unique(g_dst[outside] * num_nodes + src[outside])
    halo = torch.bincount(key // num_nodes, minlength=num_batches)
    rows = nodes + halo
    return HaloStats(
        num_parts=num_parts, batch_size=batch_size, num_batches=num_batches,
        mean_nodes=float(nodes.float().mean()),
        mean_halo=float(halo.float().mean()),
        mean_edges=float(edges.float().mean()),
        max_nodes=int(nodes.max()), max_halo=int(halo.max()),
        max_edges=int(edges.max()), max_rows=int(rows.max()))


def _check_halo_args(edge_index: Tensor, ptr: Tensor, batch_size: int,
                     num_nodes: Optional[int]) -> Tuple[Tensor, int]:
    r"""Validates the arguments of :func:`halo_stats`; returns :obj:`ptr`
    as a CPU :obj:`int64` tensor and the number of nodes."""
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError(f"'batch_size' (clusters per batch) must be a "
                         f"positive integer (got {batch_size!r})")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or (
            edge_index.size(0) != 2) or edge_index.is_floating_point() or (
            edge_index.dtype == torch.bool):
        what = (f'shape {list(edge_index.shape)}, dtype {edge_index.dtype}'
                if isinstance(edge_index, Tensor) else
                type(edge_index).__name__)
        raise ValueError(f"'edge_index' must be an integer tensor of shape "
                         f"[2, num_edges] (got {what})")
    if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2 or (
            ptr.is_floating_point() or ptr.is_complex()
            or ptr.dtype == torch.bool):
        what = (f'shape {list(ptr.shape)}, dtype {ptr.dtype}' if isinstance(
            ptr, Tensor) else type(ptr).__name__)
        raise ValueError(f"'ptr' must be a one-dimensional integer tensor of "
                         f"cluster boundaries, of length num_parts + 1 (got "
                         f"{what}); pass the 'ptr' of 'sort_by_cluster'")
    ptr = ptr.long().cpu()
    if int(ptr[0]) != 0 or bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("'ptr' must start at 0 and be non-decreasing; pass "
                         "the 'ptr' of 'sort_by_cluster'")
    low = int(edge_index.min()) if edge_index.numel() > 0 else 0
    high = int(edge_index.max()) if edge_index.numel() > 0 else -1
    if low < 0:
        raise ValueError(f"'edge_index' must hold non-negative node indices "
                         f"(got {low})")
    end = int(ptr[-1])
    if end == 0 and (num_nodes is None or num_nodes == 0):
        raise ValueError("'ptr' describes a graph without nodes; there are "
                         "no mini-batches to measure")
    if num_nodes is None:
        if end != high + 1:
            raise ValueError(
                f"'ptr' ends at {end} but 'edge_index' spans {high + 1} "
                f"nodes: pass the 'ptr' of this graph's partition (it ends "
                f"at the number of nodes), or 'num_nodes' if nodes past "
                f"index {high} have no edges")
        return ptr, end
    if isinstance(num_nodes, bool) or not isinstance(
            num_nodes, int) or num_nodes < 0:
        raise ValueError(f"'num_nodes' must be a non-negative integer or "
                         f"None (got {num_nodes!r})")
    if high >= num_nodes:
        raise ValueError(f"'edge_index' holds node index {high}, which does "
                         f"not fit 'num_nodes={num_nodes}'")
    if end != num_nodes:
        raise ValueError(f"'ptr' ends at {end} but the graph has {num_nodes} "
                         f"nodes; pass the 'ptr' of this graph's partition "
                         f"(ptr[-1] == num_nodes)")
    return ptr, end


def graph_edges(data: Data) -> Tensor:
    r"""The graph's edges as :obj:`[2, num_edges]` (sources, targets), from
    :obj:`edge_index` or from a CSR :obj:`adj_t` (rows are targets).

    Args:
        data (torch_geometric.data.Data): The graph.

    Raises:
        ValueError: If it has neither.
    """
    if 'edge_index' in data:
        return data.edge_index
    if 'adj_t' in data and data.adj_t.layout == torch.sparse_csr:
        col = data.adj_t.col_indices().long()
        row = ptr2index(data.adj_t.crow_indices().long(), col.numel())
        return torch.stack([col, row])
    raise ValueError("'data' needs an 'edge_index' or a torch.sparse_csr "
                     "'adj_t' for planning")

