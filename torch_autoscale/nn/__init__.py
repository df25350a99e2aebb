r"""Scalable GNN models."""
from . import models  # noqa: F401  (documented on its own page)
from .base import ScalableGNN

__all__ = [
    'ScalableGNN',
]
