r"""Graph partitioning: from a graph to clusters of nodes."""
from .lpmetis import CoarseGraph, lpmetis
from .metis import metis, sort_by_cluster
from .lpmetis_spark import lpmetis_spark, read_parts
from .partition import PARTITION_ENGINES, PARTITION_METHODS, partition
from .permute import permute
from .quality import (
    PartitionReport,
    balance,
    edge_cut,
    part_sizes,
    partition_report,
    size_std,
)

__all__ = [
    'partition',
    'PARTITION_METHODS',
    'PARTITION_ENGINES',
    'metis',
    'lpmetis',
    'CoarseGraph',
    'lpmetis_spark',
    'read_parts',
    'sort_by_cluster',
    'permute',
    'partition_report',
    'PartitionReport',
    'edge_cut',
    'balance',
    'size_std',
    'part_sizes',
]
