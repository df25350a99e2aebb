import logging
import warnings
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Data
from torch_geometric.index import ptr2index
from torch_geometric.utils import cumsum
from tqdm.auto import tqdm

from torch_autoscale import ops
from torch_autoscale.errors import (
    check_finite,
    finite_checks_enabled,
    non_finite_rows,
)
from torch_autoscale.utils.sparse import (
    index_select_rows,
    row_blocks,
    sparse_csr,
    to_csr,
)

log = logging.getLogger(__name__)

_STRUCTURE_KEYS = {'adj_t', 'edge_index', 'num_nodes'}


class SubgraphBatch(NamedTuple):
    r"""A mini-batch of clusters plus their 1-hop halo.

    Attributes:
        data (torch_geometric.data.Data): The subgraph: node attributes of
            all :obj:`n_id` nodes, edge attributes of the kept edges and
            :obj:`adj_t`, a :obj:`torch.sparse_csr` adjacency whose rows are
            the in-batch nodes (or all :obj:`n_id` nodes for a square,
            non-bipartite batch) and whose columns index :obj:`n_id`.
        batch_size (int): The number of in-batch nodes; they come first.
        n_id (torch.Tensor): Global node ids, in-batch nodes first, then the
            halo in ascending order (so that gathers of its rows, as from
            memory-mapped files, walk memory forward).
        offset (torch.Tensor): Start of every contiguous run of in-batch
            nodes in the global order.
        count (torch.Tensor): Length of every such run.
    """
    data: Data
    batch_size: int
    n_id: Tensor
    offset: Tensor
    count: Tensor

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'SubgraphBatch':
        r"""Moves :obj:`data` to :obj:`device`; indices stay on the host,
        where the histories are."""
        return self._replace(
            data=self.data.to(device, non_blocking=non_blocking))


def unwrap_single(batch: List[Any]) -> Any:
    r"""The :obj:`collate_fn` of loaders over precomputed mini-batches
    (one per step): returns the mini-batch itself."""
    return batch[0]


#: The values a check reads at a time, so that checking a memory-mapped
#: graph larger than memory needs little of it.
CHECK_CHUNK = 1 << 24


def _edge_ids(num_edges: int) -> Tensor:
    return torch.arange(num_edges)


def _check_finite_data(node_attrs: dict, edge_attrs: dict,
                       value: Optional[Tensor], rowptr: Tensor) -> None:
    r"""Raises :class:`~torch_autoscale.errors.NonFiniteError` naming the
    nodes whose features, edge weights or edge attributes (of their
    incoming edges) hold NaN or infinite values: one such node poisons every
    history row and parameter within a few steps, without a word
    otherwise. Reads :obj:`CHECK_CHUNK` values at a time."""
    if not finite_checks_enabled():
        return
    fix = ("replace or drop them before training (e.g., "
           "torch.nan_to_num(data.x) or a mask of the rows)")
    for key, attr in node_attrs.items():
        if attr.layout == torch.sparse_csr:
            _check_entries(attr.crow_indices(), attr.values(),
                           f"'data.{key}' (sparse)", fix)
        elif attr.is_floating_point() and attr.numel() > 0:
            step = max(1, CHECK_CHUNK // max(1, attr[0].numel()))
            rows = [
                non_finite_rows(attr[start:start + step]) + start
                for start in range(0, attr.size(0), step)
                if not bool(torch.isfinite(attr[start:start + step]).all())
            ]
            if rows:
                rows = torch.cat(rows)
                check_finite(torch.full((rows.numel(), ), float('nan')),
                             f"'data.{key}'", fix, index=rows)
    if value is not None:
        _check_entries(rowptr, value, "the edge weights of 'data.adj_t' "
                       "(by target node)", fix)
    for key, attr in edge_attrs.items():
        _check_entries(rowptr, attr, f"'data.{key}' (by target node)", fix)


def _check_entries(crow: Tensor, values: Tensor, what: str,
                   fix: str) -> None:
    r"""Checks the entries of a CSR structure, :obj:`CHECK_CHUNK` at a
    time, naming the rows that hold non-finite ones."""
    if not values.is_floating_point() or values.numel() == 0:
        return
    step = max(1, CHECK_CHUNK // max(1, values[0].numel()))
    bad = None
    for start in range(0, values.size(0), step):
        if not bool(torch.isfinite(values[start:start + step]).all()):
            bad = start
            break
    if bad is None:
        return
    flat = values.reshape(values.size(0), -1)
    entries = torch.cat([
        (~torch.isfinite(flat[s:s + step]).all(dim=1)).nonzero().view(-1) + s
        for s in range(bad, values.size(0), step)
    ])
    rows = torch.searchsorted(crow.long(), entries, right=True) - 1
    rows = rows.unique()
    check_finite(torch.full((rows.numel(), ), float('nan')), what, fix,
                 index=rows)


#: Node-level attributes by name: a length that is not the number of nodes
#: is a mistake, not a graph-level attribute.
_NODE_KEYS = ('x', 'y', 'pos', 'train_mask', 'val_mask', 'test_mask',
              'node_weight', 'n_id')


def _dropped(key: str, value: Tensor, num_nodes: int, num_edges: int) -> None:
    msg = (f"'data.{key}' has {value.size(0)} rows, but the graph has "
           f"{num_nodes} nodes and {num_edges} edges, so the loaders "
           f"cannot slice it per mini-batch")
    if key in _NODE_KEYS or key.endswith('_mask'):
        raise ValueError(f"{msg}; fix 'data.num_nodes' or the attribute")
    warnings.warn(f"{msg} and leave it out of the mini-batches; delete it "
                  f"from 'data' (or keep graph-level values elsewhere) to "
                  f"silence this warning", UserWarning, stacklevel=5)


def _check_clustered(ptr: Tensor, rowptr: Tensor, col: Tensor) -> None:
    r"""Warns when the clusters of :obj:`ptr` (contiguous node ranges) hold
    hardly more of the edges than a random split would: the graph was most
    likely not permuted by its partition, and every mini-batch then drags in
    a halo many times its size."""
    num_parts = ptr.numel() - 1
    num_nodes, num_edges = rowptr.numel() - 1, col.numel()
    if num_parts < 2 or num_edges == 0:
        return
    sizes = ptr.diff().double()
    random = float(((sizes / num_nodes)**2).sum())
    part = torch.repeat_interleave(torch.arange(num_parts), ptr.diff(),
                                   output_size=num_nodes)
    inside = 0
    for r0, r1 in row_blocks(rowptr, CHECK_CHUNK):  # Bounded memory.
        p0, p1 = int(rowptr[r0]), int(rowptr[r1])
        row = torch.repeat_interleave(part[r0:r1], rowptr[r0:r1 + 1].diff(),
                                      output_size=p1 - p0)
        inside += int((row == part[col[p0:p1]]).sum())
    inside /= num_edges
    if inside < min(2 * random, 0.5):
        warnings.warn(
            f"Only {100 * inside:.1f}% of the edges lie within the "
            f"{num_parts} clusters of 'ptr' ({100 * random:.1f}% for a "
            f"random split): 'data' looks unpermuted by its partition, so "
            f"mini-batches will carry large halos. Lay every cluster out as "
            f"a contiguous range first: 'PartitionedData(data, num_parts)' "
            f"does it all, or 'perm, ptr = sort_by_cluster(cluster, "
            f"num_parts)' and 'data = permute(data, perm)'",
            UserWarning, stacklevel=4)


class SubgraphCollater:
    r"""Builds the :class:`SubgraphBatch` of a list of clusters. Picklable, so
    it runs in :class:`~torch.utils.data.DataLoader` worker processes.

    Args:
        data (torch_geometric.data.Data): The graph, permuted so that every
            cluster is a contiguous range of nodes.
        ptr (torch.Tensor): Cluster boundaries: cluster :obj:`i` holds nodes
            :obj:`ptr[i]` to :obj:`ptr[i + 1] - 1`.
        bipartite (bool, optional): If :obj:`True`, :obj:`adj_t` has one row
            per in-batch node only; otherwise it is square over :obj:`n_id`
            with empty halo rows. (default: :obj:`True`)
        halo (bool, optional): If :obj:`False`, a batch is the subgraph its
            clusters induce, without halo (`Cluster-GCN
            <https://arxiv.org/abs/1905.07953>`_ style): edges from other
            clusters are dropped, :obj:`n_id` holds the in-batch nodes only
            and :obj:`adj_t` is square. (default: :obj:`True`)
    """
    def __init__(self, data: Data, ptr: Tensor, bipartite: bool = True,
                 halo: bool = True):
        if not isinstance(halo, bool):
            raise ValueError(f"'halo' must be True or False (got {halo!r})")
        self.ptr = _check_ptr(ptr, data.num_nodes)
        self.bipartite = bipartite
        self.halo = halo
        self.num_nodes = data.num_nodes
        self.rowptr, self.col, self.value, edge_perm = to_csr(data)

        self.node_attrs = {}
        self.edge_attrs = {}
        num_edges = self.col.numel()
        for key, value in data.items():
            if key in _STRUCTURE_KEYS or not isinstance(value, Tensor):
                continue
            if value.dim() > 0 and value.size(0) not in (self.num_nodes,
                                                          num_edges):
                _dropped(key, value, self.num_nodes, num_edges)
            if data.is_node_attr(key) and value.size(0) == self.num_nodes:
                self.node_attrs[key] = value
            elif data.is_edge_attr(key) and value.dim() > 0 and \
                    value.size(0) == num_edges:
                # Keep edge attributes attached to their edges: store them
                # in CSR order once, then slice by kept CSR positions.
                self.edge_attrs[key] = (value if edge_perm is None else
                                        value[edge_perm])
        _check_finite_data(self.node_attrs, self.edge_attrs, self.value,
                           self.rowptr)
        _check_clustered(self.ptr, self.rowptr, self.col)
        if self.value is None and isinstance(
                getattr(data, 'edge_weight', None), Tensor):
            warnings.warn(
                "'data.edge_weight' travels with every mini-batch as an edge "
                "attribute, but the mini-batches' 'adj_t' is built from "
                "'data.edge_index' without it, so convolutions that take "
                "'adj_t' ignore the weights; build the adjacency with them: "
                "'data.adj_t = torch_autoscale.utils.csr_adj_t("
                "data.edge_index, data.num_nodes, data.edge_weight)'",
                UserWarning, stacklevel=4)

    def __call__(self, clusters: Sequence[int],
                 node_attrs: Optional[Sequence[str]] = None
                 ) -> SubgraphBatch:
        r"""The mini-batch of :obj:`clusters`, carrying the node attributes
        :obj:`node_attrs` only (default: :obj:`None`, all of them)."""
        if node_attrs is not None:
            unknown = sorted(set(node_attrs) - set(self.node_attrs))
            if unknown:
                raise ValueError(f"'node_attrs' names {unknown}, which the "
                                 f"graph does not hold as node attributes "
                                 f"(it holds {sorted(self.node_attrs)})")
        clusters = torch.as_tensor(clusters, dtype=torch.long).view(-1)
        offset = self.ptr[clusters]
        count = self.ptr[clusters + 1] - offset
        batch_size = int(count.sum())
        n_id = torch.cat([
            torch.arange(o, o + c) for o, c in zip(offset.tolist(),
                                                  count.tolist())
        ]) if clusters.numel() > 0 else torch.empty(0, dtype=torch.long)

        e_id: Optional[Tensor] = None
        if self.edge_attrs:  # The kept edges' ids, to slice the attributes.
            rowptr, col, e_id, n_id = ops.relabel_one_hop(
                self.rowptr, self.col, _edge_ids(self.col.numel()), n_id,
                self.bipartite or not self.halo)
            value = None if self.value is None else self.value[e_id]
        else:  # Gathered directly (no edge-sized index for large graphs).
            rowptr, col, value, n_id = ops.relabel_one_hop(
                self.rowptr, self.col, self.value, n_id,
                self.bipartite or not self.halo)
        if self.halo:
            col, n_id = _sort_halo(col, n_id, batch_size)
        else:  # Halo columns come last: drop them.
            keep = col < batch_size
            rowptr = cumsum(torch.bincount(
                ptr2index(rowptr, col.numel())[keep], minlength=batch_size))
            col, n_id = col[keep], n_id[:batch_size]
            value = None if value is None else value[keep]
            e_id = None if e_id is None else e_id[keep]
        if value is None:
            value = torch.ones(col.numel())
        num_rows = rowptr.numel() - 1
        adj_t = sparse_csr(rowptr, col, value, (num_rows, n_id.numel()))

        data = Data(adj_t=adj_t, num_nodes=n_id.numel())
        for key, value in self.node_attrs.items():
            if node_attrs is None or key in node_attrs:
                # Node features may be a sparse CSR matrix (bag-of-words):
                data[key] = index_select_rows(value, n_id)
        for key, value in self.edge_attrs.items():
            assert e_id is not None
            data[key] = value.index_select(0, e_id)
        return SubgraphBatch(data, batch_size, n_id, offset, count)


def _sort_halo(col: Tensor, n_id: Tensor,
               batch_size: int) -> Tuple[Tensor, Tensor]:
    # The halo in ascending node order (relabel_one_hop lists it as first
    # seen): every gather of its rows (features, histories) then walks
    # memory, and a memory-mapped file, forward; on a file larger than the
    # page cache, the kernel's readahead turns a dense halo into a
    # sequential read. Only the columns' labels change (and the halo rows
    # of a square batch, which are all empty), so results do not.
    halo = n_id[batch_size:]
    if halo.numel() < 2:
        return col, n_id
    halo, order = halo.sort()
    new_position = torch.empty_like(n_id)
    new_position[:batch_size] = torch.arange(batch_size)
    new_position[batch_size:].scatter_(
        0, order, torch.arange(batch_size, n_id.numel()))
    return new_position[col], torch.cat([n_id[:batch_size], halo])


def _check_ptr(ptr: Tensor, num_nodes: int) -> Tensor:
    if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2:
        raise ValueError("'ptr' must be a one-dimensional tensor of cluster "
                         "boundaries [0, ..., num_nodes] with at least two "
                         "entries")
    ptr = ptr.long().cpu()
    if int(ptr[0]) != 0 or int(ptr[-1]) != num_nodes:
        raise ValueError(f"'ptr' must start at 0 and end at the number of "
                         f"nodes ({num_nodes}); got {int(ptr[0])} and "
                         f"{int(ptr[-1])}. Build it from the same graph with "
                         f"torch_autoscale.partition.sort_by_cluster")
    if bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("'ptr' must be non-decreasing")
    return ptr


class SubgraphLoader(DataLoader):
    r"""Loads mini-batches of :obj:`batch_size` clusters together with their
    1-hop halo, for training with histories
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    The graph must be permuted so that every cluster is a contiguous range of
    nodes (see :func:`torch_autoscale.partition.partition`, which clusters
    with METIS, LPMetis, or at random,
    :func:`~torch_autoscale.partition.sort_by_cluster` and
    :func:`~torch_autoscale.partition.permute`; or
    :class:`~torch_autoscale.loader.PartitionedData` does it all, and
    :meth:`Plan.apply <torch_autoscale.plan.Plan.apply>` lays the graph out
    by a plan, whose :meth:`~torch_autoscale.plan.Plan.loader_kwargs` give
    :obj:`batch_size`). Each batch is a
    :class:`SubgraphBatch`; empty clusters are skipped.

    .. code-block:: python

        cluster = partition(data, num_parts=40, method='metis')
        perm, ptr = sort_by_cluster(cluster, num_parts=40)
        data = permute(data, perm)
        loader = SubgraphLoader(data, ptr, batch_size=10, shuffle=True)

    Args:
        data (torch_geometric.data.Data): The permuted graph, with either a
            :obj:`torch.sparse_csr` :obj:`adj_t` (rows are targets) or an
            :obj:`edge_index`.
        ptr (torch.Tensor): Cluster boundaries of length
            :obj:`num_clusters + 1`.
        batch_size (int, optional): The number of clusters per mini-batch.
            With :obj:`1`, every subgraph is computed once up front.
            (default: :obj:`1`)
        shuffle (bool, optional): Whether to shuffle clusters every epoch.
            (default: :obj:`False`)
        bipartite (bool, optional): Whether :obj:`adj_t` holds rows for the
            in-batch nodes only. (default: :obj:`True`)
        precompute (bool, optional): Whether all subgraphs are built once up
            front and kept; each batch is then a fixed run of
            :obj:`batch_size` consecutive clusters, and :obj:`shuffle`
            shuffles the order of the runs. (default: :obj:`None`, when
            :obj:`batch_size` is :obj:`1`)
        contiguous (bool, optional): Whether, without :obj:`precompute`,
            batches are the same fixed runs of consecutive clusters, built
            when needed, rather than random clusters. A batch's own rows
            are then one range, and on a graph whose layout keeps
            neighbouring clusters near (METIS numbers parts so, and on a
            graph with locality most of a run's neighbours fall in the run),
            its halo stays near too: on a
            :class:`~torch_autoscale.store.GraphStore`, far fewer pages are
            read per batch. (default: :obj:`False`)
        halo (bool, optional): Whether batches carry their 1-hop halo. Without
            it, a batch is the subgraph its clusters induce (`Cluster-GCN
            <https://arxiv.org/abs/1905.07953>`_ style training, no
            histories: run the model full-batch on it,
            :obj:`model(batch.data.x, batch.data.adj_t)`). The adjacency's
            values are kept as they are (*e.g.*, normalized over the whole
            graph). (default: :obj:`True`)
        **kwargs (optional): Further arguments of
            :class:`torch.utils.data.DataLoader`, such as :obj:`num_workers`.
    """
    def __init__(self, data: Data, ptr: Tensor,
                 batch_size: Optional[int] = None, shuffle: bool = False,
                 bipartite: bool = True, precompute: Optional[bool] = None,
                 contiguous: bool = False, halo: bool = True, **kwargs):
        if batch_size is None:
            batch_size = 1
        if not isinstance(contiguous, bool):
            raise ValueError(f"'contiguous' must be True or False (got "
                             f"{contiguous!r})")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"'batch_size' (clusters per batch) must be a "
                             f"positive integer (got {batch_size!r})")
        for key in ('collate_fn', 'batch_sampler', 'sampler'):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"'{self.__class__.__name__}' builds its mini-batches "
                    f"itself and cannot take '{key}'; transform the "
                    f"SubgraphBatch objects it yields instead (or subclass "
                    f"SubgraphCollater)")
        self.collater = SubgraphCollater(data, ptr, bipartite, halo)
        ptr = self.collater.ptr
        clusters = (ptr[1:] > ptr[:-1]).nonzero().view(-1).tolist()
        self.clusters = clusters
        self.ptr = ptr

        self.clusters_per_batch = batch_size
        self.batches: Optional[List[SubgraphBatch]] = None
        if precompute is None:
            precompute = batch_size == 1
        groups = [clusters[i:i + batch_size]
                  for i in range(0, len(clusters), batch_size)]
        if precompute:
            batches = [
                self.collater(g) for g in tqdm(
                    groups, desc='Precomputing subgraphs', leave=False,
                    disable=not log.isEnabledFor(logging.INFO))
            ]
            self.batches = batches
            super().__init__(batches, batch_size=1, shuffle=shuffle,
                             collate_fn=unwrap_single, **kwargs)
        elif contiguous:
            super().__init__(groups, batch_size=1, shuffle=shuffle,
                             collate_fn=_GroupCollater(self.collater),
                             **kwargs)
        else:
            super().__init__(clusters, batch_size=batch_size,
                             shuffle=shuffle, collate_fn=self.collater,
                             **kwargs)


    def required_buffer_size(self) -> int:
        r"""The smallest :obj:`buffer_size` of an
        :class:`~torch_autoscale.history.AsyncIOPool` that serves the
        training batches of this loader, *i.e.* the largest halo.

        Exact when subgraphs are precomputed; otherwise an upper bound, the
        sum of the :obj:`batch_size` largest single-cluster halos (the halo of
        a union of clusters is contained in the union of their halos).
        """
        if self.batches is not None:
            return max((b.n_id.numel() - b.batch_size for b in self.batches),
                       default=0)
        halos = sorted((self.collater([c]).n_id.numel() -
                        int(self.ptr[c + 1] - self.ptr[c])
                        for c in self.clusters), reverse=True)
        return sum(halos[:self.clusters_per_batch])


class EvalSubgraphLoader(SubgraphLoader):
    r"""A :class:`SubgraphLoader` for layer-wise inference
    (:meth:`torch_autoscale.nn.ScalableGNN.mini_inference`): clusters in
    their fixed order, :obj:`batch_size` consecutive clusters per batch, all
    subgraphs computed once up front, or, with :obj:`precompute=False`,
    every time a batch is needed (for graphs larger than memory, *e.g.*, in
    a :class:`~torch_autoscale.store.GraphStore`: the subgraphs together hold
    every feature row and edge).

    Args:
        data (torch_geometric.data.Data): The permuted graph.
        ptr (torch.Tensor): Cluster boundaries.
        batch_size (int, optional): The number of clusters per mini-batch.
            (default: :obj:`1`)
        bipartite (bool, optional): Whether :obj:`adj_t` holds rows for the
            in-batch nodes only. (default: :obj:`True`)
        precompute (bool, optional): Whether all subgraphs are built once up
            front and kept. (default: :obj:`True`)
        **kwargs (optional): Further arguments of
            :class:`torch.utils.data.DataLoader`.

    Attributes:
        node_order (torch_autoscale.loader.NodeOrder, optional): The node
            orders of the :class:`~torch_autoscale.loader.PartitionedData`
            that made this loader;
            :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference` tags its
            output with it. (default: :obj:`None`)
    """
    def __init__(self, data: Data, ptr: Tensor,
                 batch_size: Optional[int] = None, bipartite: bool = True,
                 precompute: bool = True, **kwargs):
        if kwargs.pop('shuffle', False):
            raise ValueError("'EvalSubgraphLoader' visits clusters in their "
                             "fixed order (layer-wise inference needs it); "
                             "leave 'shuffle' out, or use SubgraphLoader")
        super().__init__(data, ptr, batch_size=batch_size, shuffle=False,
                         bipartite=bipartite, precompute=bool(precompute),
                         **kwargs)
        self.node_order: Optional[Any] = None

    @property
    def groups(self) -> List[List[int]]:
        r"""The clusters of every mini-batch, in order."""
        size = self.clusters_per_batch
        return [self.clusters[i:i + size]
                for i in range(0, len(self.clusters), size)]

    def batch_sequence(self, node_attrs: Optional[Sequence[str]] = None
                       ) -> Sequence[SubgraphBatch]:
        r"""The mini-batches as a sequence: the precomputed ones, or, without
        :obj:`precompute`, one that builds a batch when it is indexed (and
        keeps the last two, for the look-ahead of layer-wise inference).

        Args:
            node_attrs (list of str, optional): The node attributes that
                batches built on demand carry, *e.g.*, none for the layers of
                layer-wise inference that read histories, not features (on a
                graph larger than memory, gathering the halo's features
                reads most of them). Precomputed batches carry all.
                (default: :obj:`None`, all)
        """
        if self.batches is not None:
            return self.batches
        return _OnDemand(self.collater, self.groups, node_attrs)

    def required_buffer_size(self) -> int:
        r"""The smallest :obj:`buffer_size` of an
        :class:`~torch_autoscale.history.AsyncIOPool` that serves
        layer-wise inference over this loader, which reads every node of a
        batch: the largest batch together with its halo."""
        return max(b.n_id.numel()
                   for b in self.batch_sequence(node_attrs=[]))


class _GroupCollater:
    r"""The :obj:`collate_fn` of a loader over fixed groups of clusters,
    one group per step."""
    def __init__(self, collater: SubgraphCollater):
        self.collater = collater

    def __call__(self, groups: List[List[int]]) -> SubgraphBatch:
        return self.collater(groups[0])


class _OnDemand(Sequence):
    r"""Mini-batches built when indexed, the last two kept."""
    def __init__(self, collater: 'SubgraphCollater',
                 groups: List[List[int]],
                 node_attrs: Optional[Sequence[str]] = None):
        self.collater, self.groups = collater, groups
        self.node_attrs = node_attrs
        self._kept: List[Tuple[int, SubgraphBatch]] = []

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> SubgraphBatch:
        for j, batch in self._kept:
            if j == i:
                return batch
        batch = self.collater(self.groups[i], self.node_attrs)
        self._kept = (self._kept + [(i, batch)])[-2:]
        return batch
