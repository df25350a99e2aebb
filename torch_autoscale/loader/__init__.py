r"""Mini-batches of clusters with their 1-hop halo, and
:class:`PartitionedData`, the one call from a graph to its loaders."""
from .node_order import NodeOrder, NodeOrderTensor
from .partitioned_data import PartitionedData
from .subgraph_loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)

__all__ = [
    'PartitionedData',
    'NodeOrder',
    'NodeOrderTensor',
    'SubgraphBatch',
    'SubgraphLoader',
    'EvalSubgraphLoader',
]
