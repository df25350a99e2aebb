r"""Scalable GNN models."""
from .base import ScalableGNN
from . import models

__all__ = [
    'ScalableGNN',
]
