r"""The history tables of a model, behind the verbs the model needs."""
from typing import Any, Callable, Iterator, List, Optional, Sequence

import torch
from torch import Tensor

from .history import History
from .placement import HistoryPlacement
from .pool import AsyncIOPool


class HistoryStore(torch.nn.ModuleList):
    r"""The per-layer history tables of a model trained with historical
    embeddings (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_), where
    they live, and how they are read and written.

    The store owns the tables (one :class:`History` per layer but the last),
    their tier and dtype (a :class:`HistoryPlacement`), and, on a GPU, the
    :class:`AsyncIOPool` that overlaps their transfers with compute. A model
    talks to it through its verbs only:

    * :meth:`begin` before a mini-batch's forward pass (starts every
      table's halo pull on side streams when the pool serves),
      :meth:`push_and_pull` once per table and layer, in order, and
      :meth:`end` after it (waits for the pushes);
    * :meth:`inference_inputs`, :meth:`inference_push` and
      :meth:`inference_end` for layer-wise inference.

    It is a :class:`torch.nn.ModuleList` of its tables, so
    :obj:`zip(self.convs, self.histories)` in a model's :meth:`forward`
    works as it did when the tables were a plain list.

    Args:
        num_nodes (int): The number of rows of every table.
        channels (list of int): The width of every table.
        placement (HistoryPlacement, optional): Where the tables live, *e.g.*
            :obj:`Plan.history_placement` of the planner. (default:
            :obj:`None`, host memory in the default dtype)
        pool_size (int, optional): The number of concurrent transfers on a
            GPU. (default: :obj:`None`, synchronous transfers)
        buffer_size (int, optional): The largest number of rows one transfer
            reads (the largest halo); required with :obj:`pool_size`.
            (default: :obj:`None`)
        factory (callable, optional): Builds every table instead of
            :class:`History`, called as :obj:`factory(layer, num_nodes,
            channels, dtype)` (*e.g.*, the tables shared across processes of
            :func:`torch_autoscale.distributed.history_factory`). The
            factory decides where tables live, so :obj:`placement` may only
            set dtypes (all tables host). (default: :obj:`None`)
    """
    def __init__(self, num_nodes: int, channels: Sequence[int],
                 placement: Optional[HistoryPlacement] = None,
                 pool_size: Optional[int] = None,
                 buffer_size: Optional[int] = None,
                 factory: Optional[Callable[..., History]] = None):
        channels = [int(c) for c in channels]
        num = len(channels)
        if placement is None:
            placement = HistoryPlacement.resolve(num)
        if not isinstance(placement, HistoryPlacement):
            raise ValueError(f"'placement' must be a HistoryPlacement (got "
                             f"{type(placement).__name__}); build one with "
                             f"'HistoryPlacement.resolve(...)'")
        placement.check(num)
        if (pool_size is None) != (buffer_size is None):
            raise ValueError("'pool_size' and 'buffer_size' must be given "
                             "together")
        if factory is not None:
            if not callable(factory):
                raise ValueError(f"'factory' must be callable (got "
                                 f"{type(factory).__name__})")
            tables = []
            for layer, (c, dtype) in enumerate(zip(channels,
                                                   placement.dtypes)):
                table = factory(layer, num_nodes, c, dtype)
                if not isinstance(table, History):
                    raise TypeError(
                        f"'history_factory' must return a History (got "
                        f"{type(table).__name__} for layer {layer})")
                tables.append(table)
        else:
            tables = [
                History(num_nodes, c, device=placement.table_device(i),
                        dtype=dtype, storage=storage,
                        directory=placement.table_directory(i))
                for i, (c, dtype, storage) in enumerate(
                    zip(channels, placement.dtypes, placement.storages))
            ]
        super().__init__(tables)
        self.num_nodes = num_nodes
        self.placement = placement
        self.pool: Optional[AsyncIOPool] = None
        if pool_size is not None and num > 0:
            # The buffers are raw bytes viewed as each table's dtype: size
            # them by the widest one (pulls and pushes cast in and out).
            dtype = max((t.dtype for t in tables), key=lambda d: d.itemsize)
            self.pool = AsyncIOPool(pool_size, buffer_size, max(channels),
                                    dtype=dtype)
        self._async = False

    @classmethod
    def build(cls, num_nodes: int, channels: Sequence[int],
              placement: Optional[HistoryPlacement] = None,
              storage: Any = None, dtype: Any = None, device: Any = None,
              directory: Optional[str] = None,
              pool_size: Optional[int] = None,
              buffer_size: Optional[int] = None,
              factory: Optional[Callable[..., History]] = None,
              prefix: str = '') -> 'HistoryStore':
        r"""Builds a store from either a :obj:`placement` or the arguments
        :meth:`HistoryPlacement.resolve` takes (:obj:`storage`,
        :obj:`dtype`, :obj:`device`, :obj:`directory`), which
        :class:`~torch_autoscale.nn.ScalableGNN` forwards as
        :obj:`history_storage`, ... (:obj:`prefix` names them so in
        errors). With a :obj:`factory`, only :obj:`dtype` may be given."""
        given = {f'{prefix}storage': storage, f'{prefix}dtype': dtype,
                 f'{prefix}device': device, f'{prefix}dir': directory}
        if placement is not None:
            clash = [k for k, v in given.items() if v is not None]
            if clash:
                raise ValueError(f"pass either 'placement' or {clash[0]!r}: "
                                 f"the placement sets where histories live")
        if factory is not None:
            clash = [k for k, v in given.items()
                     if v is not None and k != f'{prefix}dtype']
            if clash or placement is not None:
                raise ValueError(
                    f"pass either '{prefix}factory' or "
                    f"{(clash or ['placement'])[0]!r}: the factory decides "
                    f"where histories live")
        if placement is None:
            placement = HistoryPlacement.resolve(
                len(channels), storage=storage, dtype=dtype, device=device,
                directory=directory, prefix=prefix)
        return cls(num_nodes, channels, placement, pool_size=pool_size,
                   buffer_size=buffer_size, factory=factory)

    # A ModuleList's children are its tables: the pool is kept aside (it
    # holds no state to save) and follows the model's device here.
    def __setattr__(self, name: str, value: Any) -> None:
        if name == 'pool':
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if self.pool is not None:
            self.pool._apply(fn)
        return self

    @property
    def device(self) -> Optional[torch.device]:
        r"""The device of the model the tables serve (:obj:`None` without
        tables)."""
        return self[0].device if len(self) > 0 else None

    @property
    def nbytes(self) -> int:
        r"""The total size of all tables in bytes, whatever their tier."""
        return sum(table.nbytes for table in self)

    def reset_parameters(self) -> None:
        r"""Fills every table with zeros."""
        for table in self:
            table.reset_parameters()

    def uses_pool(self) -> bool:
        r"""Whether transfers run asynchronously through the pool: a pool
        was asked for, the model is on a GPU, and every table is a
        host-side table of one row per node."""
        return self.pool is not None and self.pool.active and all(
            t.supports_pool and t.emb.device.type == 'cpu' for t in self)

    def _index(self, table: Any) -> int:
        if isinstance(table, int):
            return table
        for i, t in enumerate(self):
            if t is table:
                return i
        raise ValueError("'history' is not a table of this model's store; "
                         "pass one of 'self.histories'")

    # Training ###############################################################

    def begin(self, batch: Optional[Any]) -> None:
        r"""Prepares a forward pass over :obj:`batch` (a
        :class:`~torch_autoscale.loader.SubgraphBatch`, or :obj:`None` for
        full-batch): with the pool, starts every table's halo pull."""
        self._async = False
        if batch is None or len(self) == 0 or not self.uses_pool():
            return
        if self.pool.num_pending_pulls > 0:
            # A previous forward raised or skipped a table: drop its pulls
            # so that every layer receives its own rows.
            self.pool.synchronize()
        halo = batch.n_id[batch.batch_size:]
        for table in self:
            self.pool.async_pull(table.emb, None, None, halo)
        self._async = True

    def push_and_pull(self, table: Any, x: Tensor, batch: Any) -> Tensor:
        r"""Pushes the in-batch rows of :obj:`x` (the first
        :obj:`batch.batch_size`) to :obj:`table` and returns them followed
        by the halo's historical embeddings.

        Args:
            table (History or int): The table of the layer that produced
                :obj:`x`, or its index.
            x (torch.Tensor): The layer's output.
            batch (SubgraphBatch): The mini-batch.
        """
        table = self[self._index(table)]
        batch_size = batch.batch_size
        if x.size(0) < batch_size:
            raise ValueError(f"'x' has {x.size(0)} rows but the batch holds "
                             f"{batch_size} in-batch nodes")
        h = x[:batch_size]
        if self._async:
            checked = table.check_values(
                h.detach(), lambda rows: batch.n_id[rows])
            self.pool.async_push(checked, batch.offset, batch.count,
                                 table.emb)
            halo = self.pool.synchronize_pull().to(h.dtype)
        else:
            # The runs name the rows (n_id[:batch_size] are the same).
            table.push(h, offset=batch.offset, count=batch.count)
            halo = table.pull(batch.n_id[batch_size:])
        return torch.cat([h, halo], dim=0)

    def end(self) -> None:
        r"""Finishes a forward pass: waits for the asynchronous pushes."""
        if self._async:
            self._async = False
            self.pool.synchronize_push()

    # Layer-wise inference ###################################################

    def inference_inputs(self, table: int,
                         batches: List[Any]) -> Iterator[Tensor]:
        r"""Yields, for every batch of :obj:`batches` in order, the rows of
        its nodes (in-batch and halo) from table :obj:`table`, in the
        default dtype on the model's device; with the pool, the next
        batch's rows are read while the current one computes."""
        src = self[table]
        if not self.uses_pool():
            for batch in batches:
                yield src.pull(batch.n_id)
            return
        self._inference_pull(src, batches[0])
        for i in range(len(batches)):
            if i + 1 < len(batches):
                self._inference_pull(src, batches[i + 1])
            yield self.pool.synchronize_pull().to(torch.get_default_dtype())

    def _inference_pull(self, table: History, batch: Any) -> None:
        self.pool.async_pull(table.emb, batch.offset, batch.count,
                             batch.n_id[batch.batch_size:])

    def inference_push(self, table: int, h: Tensor, batch: Any) -> None:
        r"""Writes the outputs :obj:`h` of the in-batch nodes of
        :obj:`batch` to table :obj:`table`."""
        dst = self[table]
        if self.uses_pool():
            checked = dst.check_values(
                h, lambda rows, n_id=batch.n_id: n_id[rows])
            self.pool.async_push(checked, batch.offset, batch.count,
                                 dst.emb)
        else:
            dst.push(h, offset=batch.offset, count=batch.count)

    def inference_end(self, table: int) -> None:
        r"""Returns once every row written to table :obj:`table` is
        visible, also to the other processes that share it."""
        if self.uses_pool():
            self.pool.synchronize_push()
        self[table].sync()

    def extra_repr(self) -> str:
        pool = '' if self.pool is None else f', pool={self.pool!r}'
        return f'num_nodes={self.num_nodes}{pool}'
