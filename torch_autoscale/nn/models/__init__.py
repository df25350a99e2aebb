r"""Ready-made scalable GNNs, one per module."""
from .appnp import APPNP
from .basic import BasicGNN
from .gat import GAT
from .gcn import GCN
from .gcnii import GCNII
from .gin import GIN
from .pna import PNA, degree_histogram
from .pna_jk import PNA_JK
from .sage import GraphSAGE

__all__ = [
    'BasicGNN',
    'GCN',
    'GAT',
    'APPNP',
    'GCNII',
    'PNA',
    'PNA_JK',
    'GIN',
    'GraphSAGE',
    'degree_histogram',
]
