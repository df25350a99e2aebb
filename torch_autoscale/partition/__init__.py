r"""Graph partitioning: from a graph to clusters of nodes."""
from .metis import metis, sort_by_cluster
from .permute import permute

__all__ = [
    'metis',
    'sort_by_cluster',
    'permute',
]
