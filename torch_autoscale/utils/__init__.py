r"""Utilities: sparse conversions, synthetic graphs, memory measurement."""
from .memory import StepMemory
from .sparse import (
    CSRCache,
    CSRTranspose,
    csr_adj_t,
    csr_cache,
    index_select_rows,
    linear,
    narrow_rows,
    sparsify_features,
    spmm,
    to_csr,
    transpose_csr,
    with_values,
)
from .synthetic import homophilous_sbm

__all__ = [
    'to_csr',
    'csr_adj_t',
    'index_select_rows',
    'linear',
    'narrow_rows',
    'sparsify_features',
    'spmm',
    'transpose_csr',
    'with_values',
    'CSRCache',
    'CSRTranspose',
    'csr_cache',
    'homophilous_sbm',
    'StepMemory',
]
