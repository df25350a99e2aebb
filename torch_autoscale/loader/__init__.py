r"""Mini-batches of clusters with their 1-hop halo."""
from .subgraph_loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)

__all__ = [
    'SubgraphBatch',
    'SubgraphLoader',
    'EvalSubgraphLoader',
]
