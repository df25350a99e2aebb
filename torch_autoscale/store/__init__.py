r"""Graphs kept on disk: a memory-mapped format
(:class:`GraphStore`), its writer, and streaming ingestion from an
in-memory graph or an edge list on disk."""
from .format import (
    MANIFEST,
    STORE_VERSION,
    GraphStore,
    GraphStoreWriter,
)
from .generate import generate_edge_list, generate_store
from .ingest import (
    EDGE_FORMATS,
    ingest_edge_list,
    read_edge_chunks,
    store_from_data,
)
from .partition import lpmetis_store
from .permute import partition_store, permute_store
from .pyg import StoreFeatureStore, StoreGraphStore, to_pyg

__all__ = [
    'GraphStore',
    'GraphStoreWriter',
    'STORE_VERSION',
    'MANIFEST',
    'store_from_data',
    'ingest_edge_list',
    'read_edge_chunks',
    'EDGE_FORMATS',
    'permute_store',
    'partition_store',
    'lpmetis_store',
    'generate_store',
    'generate_edge_list',
    'to_pyg',
    'StoreFeatureStore',
    'StoreGraphStore',
]
