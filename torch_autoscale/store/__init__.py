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
from .permute import partition_store, permute_store

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
    'generate_store',
    'generate_edge_list',
]

from .partition import lpmetis_store  # noqa: E402

__all__ += ['lpmetis_store']
