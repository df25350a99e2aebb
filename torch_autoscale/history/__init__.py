r"""Storage of historical embeddings."""
from .history import STORAGES, History
from .placement import HistoryPlacement
from .pool import AsyncIOPool
from .segment_history import SegmentHistory

__all__ = [
    'STORAGES',
    'History',
    'HistoryPlacement',
    'SegmentHistory',
    'AsyncIOPool',
]
