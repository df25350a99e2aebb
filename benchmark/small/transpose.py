r"""Training epochs with the library's transposes against PyTorch's.

The backward pass of a sparse-dense product multiplies with the transpose
of the sparse matrix: the adjacency of every mini-batch, and sparse input
features (bag-of-words). PyTorch builds that transpose by sorting all
entries, in every step; the library builds it by a counting sort
(:func:`torch_autoscale.ops.csr_transpose`), once per matrix, and shares it
between sparse features and their dropout outputs. This trains full-batch
and GAS epochs both ways, the two alternating epoch by epoch in one process
(copies of one model, same initialization), for configs of the small
benchmark.

    python benchmark/small/transpose.py --root data --epochs 20
"""
import contextlib
import os.path as osp
import statistics
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import torch
import torch.nn.functional as F

import torch_autoscale.nn.functional
import torch_autoscale.nn.linear
import torch_autoscale.utils.sparse
from torch_autoscale.utils.sparse import sparse_csr

# benchmark/, for the helpers all benchmarks share; training.py is beside.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import bench_util  # noqa: E402
import training  # noqa: E402

WAYS = ('pytorch', 'library')
DEFAULT_CONFIGS = ['gcn_coauthor_cs', 'gat_coauthor_cs', 'appnp_coauthor_cs',
                   'gcnii_coauthor_cs', 'gcn_amazon_computers',
                   'appnp_amazon_computers']


def _sorted_structure(x):
    r"""The transpose structure of :obj:`x` as PyTorch's conversion builds it
    (a sort over all entries)."""
    perm = torch.arange(x.values().numel())
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', '.*Sparse CSR tensor support.*')
        t = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), perm,
                                    size=x.shape).t().to_sparse_csr()
    return t.crow_indices(), t.col_indices(), t.values()


def _plain_with_values(x, value):
    r"""Sparse dropout's output without a shared transpose."""
    return sparse_csr(x.crow_indices(), x.col_indices(), value, x.size())


@contextlib.contextmanager
def pytorch_transposes() -> Iterator[None]:
    r"""Within, the library transposes as PyTorch does: every sparse
    adjacency by a sort, once per matrix, and sparse input features through
    :func:`torch.nn.functional.linear`, whose backward pass sorts them every
    step."""
    with mock.patch.object(torch_autoscale.nn.linear, 'linear', F.linear), \
            mock.patch.object(torch_autoscale.nn.functional, 'with_values',
                              _plain_with_values), \
            mock.patch.object(torch_autoscale.utils.sparse,
                              '_transpose_structure', _sorted_structure):
        yield


def measure(cfg: Dict[str, Any], data, ptr, num_classes: int, epochs: int,
            warmup: int = 2, seed: int = 0) -> Dict[str, Any]:
    r"""Seconds of every timed epoch, full-batch and GAS, both ways."""
    seconds: Dict[str, List[float]] = {}
    for mode in ('full', 'gas'):
        trainers = {way: training.Trainer(mode, cfg, data, ptr, num_classes,
                                          seed) for way in WAYS}
        for way in WAYS:
            seconds[f'{mode}_{way}'] = []
        for epoch in range(warmup + epochs):
            order = WAYS if epoch % 2 == 0 else WAYS[::-1]
            for way in order:
                ctx = (pytorch_transposes() if way == 'pytorch' else
                       contextlib.nullcontext())
                with ctx:
                    sec = trainers[way].epoch()
                if epoch >= warmup:
                    seconds[f'{mode}_{way}'].append(sec)
    return dict(config=cfg['name'], model=cfg['model'],
                dataset=cfg['dataset'], epochs=epochs,
                sparse=data.x.layout == torch.sparse_csr, seconds=seconds)


def table(results: List[Dict[str, Any]]) -> Tuple[str, List[str]]:
    r"""The title and body of the table of :obj:`results`: median seconds
    per epoch both ways and the speed-ups."""
    rows = []
    for r in results:
        med = {k: statistics.median(v) for k, v in r['seconds'].items()}
        cells = []
        for mode in ('full', 'gas'):
            old, new = med[f'{mode}_pytorch'], med[f'{mode}_library']
            cells += [f'{old:.4f}', f'{new:.4f}', f'{old / new:.2f}x']
        features = 'sparse' if r['sparse'] else 'dense'
        rows.append([r['model'], r['dataset'], features, *cells])
    body = [
        f"torch {bench_util.values(results, 'torch')}, CPU, "
        f"{bench_util.values(results, 'threads')} intra-op thread(s). "
        'Training seconds per epoch, median over the timed epochs (after two '
        'warm-up epochs), both ways alternating epoch by epoch in one '
        'process. `PyTorch`: transposes by sorting, sparse features '
        'transposed every step; `library`: counting-sort transposes, once '
        'per matrix. `features`: sparse (bag-of-words, CSR) or dense.', ''
    ] + bench_util.markdown_table(
        ['model', 'dataset', 'features', 'full, PyTorch s',
         'full, library s', 'full speed-up', 'GAS, PyTorch s',
         'GAS, library s', 'GAS speed-up'], rows)
    return ('Training epochs: the library\'s transposes against '
            'PyTorch\'s', body)


def main(argv: Optional[List[str]] = None) -> str:
    return training.timing_main(__file__, __doc__, 'small_transpose',
                                DEFAULT_CONFIGS, measure, table, argv)


if __name__ == '__main__':
    main()
