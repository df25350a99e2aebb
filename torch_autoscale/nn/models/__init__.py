r"""Ready-made scalable GNNs, one per module."""
from .gcn import GCN

__all__ = [
    'GCN',
]
