r"""The fates the planner chooses between: a tier and a dtype for every
history (:class:`HistoryFate`), kept or recomputed activations for every
layer (:class:`LayerFate`), and all of them together for a model
(:class:`Placement`), from which the model's history store is built
(:meth:`Placement.history_placement`)."""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch

from torch_autoscale.history import STORAGES, HistoryPlacement

from .stats import ModelSpec

DTYPES = {'float32': 4, 'bfloat16': 2, 'float16': 2}
r"""The history dtypes the planner knows, with their bytes per element."""


@dataclass(frozen=True)
class HistoryFate:
    r"""Where one history lives.

    Args:
        tier (str): The tier, one of
            :obj:`torch_autoscale.history.STORAGES`.
        dtype (str): The storage dtype, a key of :obj:`DTYPES`.
    """
    tier: str
    dtype: str


@dataclass(frozen=True)
class LayerFate:
    r"""What happens to the activations of one layer.

    Args:
        recompute (bool): Whether they are recomputed in the backward pass
            instead of kept (activation checkpointing).
    """
    recompute: bool


Fate = Union[HistoryFate, LayerFate]


@dataclass(frozen=True)
class Placement:
    r"""The fate of every history and layer: the planner's choice, in its
    own terms (tier and dtype names). :meth:`history_placement` turns it
    into the :class:`~torch_autoscale.history.HistoryPlacement` a model's
    histories are built from.

    Args:
        tiers (tuple of str): The tier of every history, from
            :obj:`torch_autoscale.history.STORAGES` (:obj:`"device"`,
            :obj:`"host"`, :obj:`"disk"`).
        dtypes (tuple of str): The storage dtype of every history
            (:obj:`"float32"`, :obj:`"bfloat16"`, :obj:`"float16"`).
        recompute (tuple of bool): Whether the activations of every layer
            are recomputed in the backward pass instead of kept
            (activation checkpointing).
    """
    tiers: Tuple[str, ...]
    dtypes: Tuple[str, ...]
    recompute: Tuple[bool, ...]

    @classmethod
    def default(cls, spec: ModelSpec) -> 'Placement':
        r"""Host histories in float32, nothing recomputed (what GAS does
        without a plan).

        Args:
            spec (ModelSpec): The model's shape.
        """
        return cls(('host', ) * spec.num_histories,
                   ('float32', ) * spec.num_histories,
                   (False, ) * spec.num_layers)

    @classmethod
    def from_fates(cls, fates: Sequence[Fate]) -> 'Placement':
        r"""The placement of the given fates: the histories' in order,
        and the layers' in order.

        Args:
            fates (list of HistoryFate or LayerFate): The fates.
        """
        histories = [f for f in fates if isinstance(f, HistoryFate)]
        return cls(tuple(f.tier for f in histories),
                   tuple(f.dtype for f in histories),
                   tuple(f.recompute for f in fates
                         if isinstance(f, LayerFate)))

    @property
    def history_fates(self) -> Tuple[HistoryFate, ...]:
        r"""The fate of every history."""
        return tuple(HistoryFate(t, d)
                     for t, d in zip(self.tiers, self.dtypes))

    def check(self, spec: ModelSpec) -> 'Placement':
        r"""Returns the placement after checking it against a model.

        Args:
            spec (ModelSpec): The model's shape.

        Raises:
            ValueError: If it does not give one tier and one dtype per
                history and one flag per layer, or names an unknown tier
                or dtype.
        """
        if len(self.tiers) != spec.num_histories or len(
                self.dtypes) != spec.num_histories:
            raise ValueError(f"a {spec.num_layers}-layer model owns "
                             f"{spec.num_histories} histories: give one tier "
                             f"and one dtype per history")
        if len(self.recompute) != spec.num_layers:
            raise ValueError(f"'recompute' needs one flag per layer "
                             f"({spec.num_layers})")
        for tier in self.tiers:
            if tier not in STORAGES:
                raise ValueError(f"unknown tier {tier!r}; pass one of "
                                 f"{STORAGES}")
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"unknown history dtype {dtype!r}; pass "
                                 f"one of {tuple(DTYPES)}")
        return self

    def history_placement(
            self, device: Optional[Union[str, torch.device]] = None,
            directory: Optional[str] = None) -> HistoryPlacement:
        r"""The placement of the history tables this placement describes.

        Args:
            device (torch.device or str, optional): The device of
                device-tier histories; kept only when one is on the device.
                (default: :obj:`None`)
            directory (str, optional): The folder of disk-tier histories;
                kept only when one is on disk. (default: :obj:`None`)

        Raises:
            ValueError: If a tier or dtype is unknown, or a history is on
                the device and :obj:`device` is missing.
        """
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"unknown history dtype {dtype!r}; pass "
                                 f"one of {tuple(DTYPES)}")
        on_device = 'device' in self.tiers
        return HistoryPlacement(
            storages=self.tiers,
            dtypes=tuple(getattr(torch, d) for d in self.dtypes),
            device=torch.device(device) if on_device and
            device is not None else None,
            directory=directory if 'disk' in self.tiers else None)
