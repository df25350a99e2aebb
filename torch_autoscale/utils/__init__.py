r"""Utilities: sparse conversions and synthetic graphs."""
from .sparse import to_csr, csr_adj_t
from .synthetic import homophilous_sbm

__all__ = [
    'to_csr',
    'csr_adj_t',
    'homophilous_sbm',
]
