r"""Scalable GNN models."""
from . import models  # noqa: F401  (documented on its own page)
from .base import ScalableGNN
from .lipschitz import lipschitz_penalty

__all__ = [
    'ScalableGNN',
    'lipschitz_penalty',
]
