r"""Ready-made scalable GNNs, one per module."""
from .appnp import APPNP
from .gat import GAT
from .gcn import GCN
from .gcnii import GCNII

__all__ = [
    'GCN',
    'GAT',
    'APPNP',
    'GCNII',
]
