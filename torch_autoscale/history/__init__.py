r"""Storage of historical embeddings."""
from .history import History
from .pool import AsyncIOPool
from .segment_history import SegmentHistory

__all__ = [
    'History',
    'SegmentHistory',
    'AsyncIOPool',
]
