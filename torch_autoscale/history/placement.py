r"""Where the history tables of a model live: one storage tier and one
dtype per table, the device of on-device tables and the folder of on-disk
ones."""
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from .history import STORAGES, DeviceLike

TableArg = Union[Any, Sequence[Any], None]


@dataclass(frozen=True)
class HistoryPlacement:
    r"""Where every history table of a model lives: what a
    :class:`~torch_autoscale.history.HistoryStore` is built from, and what
    the planner (:func:`torch_autoscale.plan.plan`) produces
    (:attr:`~torch_autoscale.plan.Plan.history_placement`).

    Build one with :meth:`resolve` from per-model or per-table arguments;
    the constructor takes the resolved values.

    Args:
        storages (tuple of str): The tier of every table, one of
            :obj:`torch_autoscale.history.STORAGES` (:obj:`"device"`,
            :obj:`"host"`, :obj:`"disk"`).
        dtypes (tuple of torch.dtype): The storage dtype of every table.
        device (torch.device, optional): The device of the :obj:`"device"`
            tables. (default: :obj:`None`)
        directory (str, optional): The folder of the files of the
            :obj:`"disk"` tables. (default: :obj:`None`,
            :func:`tempfile.gettempdir`)
    """
    storages: Tuple[str, ...]
    dtypes: Tuple[torch.dtype, ...]
    device: Optional[torch.device] = None
    directory: Optional[str] = None

    def __post_init__(self):
        storages, dtypes = tuple(self.storages), tuple(self.dtypes)
        object.__setattr__(self, 'storages', storages)
        object.__setattr__(self, 'dtypes', dtypes)
        if self.device is not None:
            object.__setattr__(self, 'device', torch.device(self.device))
        if len(storages) != len(dtypes):
            raise ValueError(f"'storages' ({len(storages)}) and 'dtypes' "
                             f"({len(dtypes)}) must give one entry per "
                             f"table")
        for storage in storages:
            if storage not in STORAGES:
                raise ValueError(f"unknown history storage {storage!r}; "
                                 f"pass one of {STORAGES}")
        for dtype in dtypes:
            if not isinstance(dtype, torch.dtype) or \
                    not dtype.is_floating_point:
                raise ValueError(f"history dtypes must be floating point "
                                 f"torch.dtype objects such as "
                                 f"torch.float16 (got {dtype!r})")
        if 'device' in storages and self.device is None:
            raise ValueError("'device' storage places tables on a device, "
                             "which is missing; pass, e.g., device='cuda'")

    @property
    def num_tables(self) -> int:
        r"""The number of tables placed."""
        return len(self.storages)

    def table_device(self, index: int) -> Optional[torch.device]:
        r"""The device of table :obj:`index` (:obj:`None` unless it is
        stored on a device)."""
        return self.device if self.storages[index] == 'device' else None

    def table_directory(self, index: int) -> Optional[str]:
        r"""The folder of table :obj:`index`'s file (:obj:`None` unless it
        is stored on disk)."""
        return self.directory if self.storages[index] == 'disk' else None

    @classmethod
    def resolve(cls, num_tables: int, storage: TableArg = None,
                dtype: TableArg = None, device: DeviceLike = None,
                directory: Optional[str] = None,
                prefix: str = '') -> 'HistoryPlacement':
        r"""Resolves per-model or per-table arguments to a placement.

        Args:
            num_tables (int): The number of tables.
            storage (str or list of str, optional): One tier for all tables
                or one per table. (default: :obj:`None`, on :obj:`device` if
                it is given and not the CPU, in host memory otherwise)
            dtype (torch.dtype or list of torch.dtype, optional): One dtype
                for all tables or one per table. (default: :obj:`None`, the
                default dtype)
            device (torch.device or str, optional): The device of on-device
                tables. (default: :obj:`None`)
            directory (str, optional): The folder of on-disk tables.
                (default: :obj:`None`)
            prefix (str, optional): Prefixed to the argument names in error
                messages, *e.g.*, :obj:`"history_"` for the arguments of
                :class:`~torch_autoscale.nn.ScalableGNN`.
                (default: :obj:`""`)
        """
        s_name, d_name = f'{prefix}storage', f'{prefix}dtype'
        dev_name = f'{prefix}device'
        storages = _per_table(s_name, storage, str, num_tables)
        dtypes = _per_table(d_name, dtype, torch.dtype, num_tables)
        for s in storages:
            if s is not None and s not in STORAGES:
                raise ValueError(f"'{s_name}' must be one of 'device', "
                                 f"'host' or 'disk' (got {s!r})")
        if 'device' in storages and device is None:
            raise ValueError(f"'{s_name}' places histories on a device but "
                             f"'{dev_name}' is missing; pass, e.g., "
                             f"{dev_name}='cuda'")
        dev = None if device is None else torch.device(device)
        default = 'device' if dev is not None and dev.type != 'cpu' \
            else 'host'
        storages = [default if s is None else s for s in storages]
        if dev is not None and dev.type != 'cpu' and num_tables > 0 and \
                'device' not in storages:
            raise ValueError(
                f"'{dev_name}' is {dev} but '{s_name}' keeps every history "
                f"off it ({storage!r}); leave '{dev_name}' out or use "
                f"'device' storage")
        dtypes = [torch.get_default_dtype() if d is None else d
                  for d in dtypes]
        return cls(tuple(storages), tuple(dtypes),
                   dev if 'device' in storages else None,
                   directory if 'disk' in storages else None)

    def check(self, num_tables: int) -> 'HistoryPlacement':
        r"""Returns the placement after checking that it places
        :obj:`num_tables` tables."""
        if self.num_tables != num_tables:
            raise ValueError(f"the placement places {self.num_tables} "
                             f"tables but {num_tables} are needed (one per "
                             f"layer with a history); plan for this model")
        return self


def _per_table(name: str, value: Any, kind: type,
               num: int) -> List[Any]:
    if value is None or isinstance(value, kind):
        return [value] * num
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"'{name}' must be a {kind.__name__}, a list of "
                         f"{num} of them, or None (got {value!r})")
    values = list(value)
    if len(values) != num:
        raise ValueError(
            f"'{name}' lists {len(values)} entries but the model owns {num} "
            f"histories; give one per history")
    for v in values:
        if v is not None and not isinstance(v, kind):
            raise ValueError(f"'{name}' must hold {kind.__name__} entries or "
                             f"None (got {v!r})")
    return values
