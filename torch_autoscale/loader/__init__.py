r"""Mini-batches of clusters with their 1-hop halo, and
:class:`PartitionedData`, the one call from a graph to its loaders."""
from .partitioned_data import PartitionedData
from .subgraph_loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)

__all__ = [
    'PartitionedData',
    'SubgraphBatch',
    'SubgraphLoader',
    'EvalSubgraphLoader',
]
