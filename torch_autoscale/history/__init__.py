r"""Storage of historical embeddings."""
from .history import History
from .pool import AsyncIOPool

__all__ = [
    'History',
    'AsyncIOPool',
]
