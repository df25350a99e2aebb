r"""Storage of historical embeddings."""
from .history import STORAGES, History
from .placement import HistoryPlacement
from .pool import AsyncIOPool
from .segment_history import SegmentHistory
from .store import HistoryStore

__all__ = [
    'STORAGES',
    'History',
    'HistoryPlacement',
    'HistoryStore',
    'SegmentHistory',
    'AsyncIOPool',
]
