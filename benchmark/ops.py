r"""Native kernels against their pure-PyTorch fallbacks, side by side.

Measures :func:`torch_autoscale.ops.relabel_one_hop` (the loader's hot path),
:func:`torch_autoscale.ops.csr_transpose` (the transpose of every mini-batch
adjacency for the backward pass; also against PyTorch's own conversion,
:obj:`adj.t().to_sparse_csr()`) and the CPU path of
:func:`torch_autoscale.ops.read_async` (history gathers) on a random graph,
alternating the implementations in one run so that machine noise hits them
alike, and prints a table of medians and ratios.

    python benchmark/ops.py --out benchmark/results/ops.md
"""
import argparse
import statistics
import time
from typing import Callable, List, Optional

import torch

import torch_autoscale.typing
from torch_autoscale import ops
from torch_autoscale.utils.sparse import sparse_csr


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(native: Callable, fallback: Callable, repeat: int,
                 torch_fn: Optional[Callable] = None):
    r"""Median seconds of :obj:`native`, :obj:`fallback` (run without the
    extension) and, if given, :obj:`torch_fn`, called in turn."""
    times = {'native': [], 'fallback': [], 'torch': []}
    for _ in range(repeat):
        torch_autoscale.typing.WITH_NATIVE = True
        times['native'].append(timed(native))
        torch_autoscale.typing.WITH_NATIVE = False
        times['fallback'].append(timed(fallback))
        torch_autoscale.typing.WITH_NATIVE = True
        if torch_fn is not None:
            times['torch'].append(timed(torch_fn))
    return tuple(statistics.median(t) if t else None
                 for t in times.values())


def table_row(name: str, native: float, fallback: float,
        torch_sec: Optional[float] = None) -> List[str]:
    cells = [name, f'{1e3 * native:.1f}', f'{1e3 * fallback:.1f}',
             f'{fallback / native:.1f}x']
    if torch_sec is None:
        return cells + ['-', '-']
    return cells + [f'{1e3 * torch_sec:.1f}', f'{torch_sec / native:.1f}x']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-nodes', type=int, default=1_000_000)
    parser.add_argument('--num-edges', type=int, default=10_000_000)
    parser.add_argument('--batch-nodes', type=int, default=50_000)
    parser.add_argument('--channels', type=int, default=128)
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--out', type=str, default=None)
    args = parser.parse_args()
    if not torch_autoscale.typing.WITH_NATIVE:
        raise SystemExit('the native extension is not built; nothing to '
                         'compare')

    gen = torch.Generator().manual_seed(0)
    n, e = args.num_nodes, args.num_edges
    row = torch.randint(n, (e, ), generator=gen).sort()[0]
    col = torch.randint(n, (e, ), generator=gen)
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=rowptr[1:])
    value = torch.arange(e)
    start = int(torch.randint(n - args.batch_nodes, (1, ), generator=gen))
    n_id = torch.arange(start, start + args.batch_nodes)

    rows: List[List[str]] = []

    def relabel():
        return ops.relabel_one_hop(rowptr, col, value, n_id, True)

    native, fallback, _ = side_by_side(relabel, relabel, args.repeat)
    rows.append(table_row(f'relabel_one_hop ({n:,} nodes, {e:,} edges, batch '
                    f'{args.batch_nodes:,})', native, fallback))

    # The mini-batch adjacency of that batch: in-batch rows, batch plus halo
    # columns.
    out_rowptr, out_col, _, out_n_id = relabel()
    num_cols = out_n_id.numel()
    adj = sparse_csr(out_rowptr, out_col, torch.rand(out_col.numel()),
                     (args.batch_nodes, num_cols))

    def transpose():
        return ops.csr_transpose(out_rowptr, out_col, num_cols)

    native, fallback, torch_sec = side_by_side(
        transpose, transpose, args.repeat,
        lambda: adj.t().to_sparse_csr())
    rows.append(table_row(f'csr_transpose ({args.batch_nodes:,} x {num_cols:,}, '
                    f'{out_col.numel():,} entries)', native, fallback,
                    torch_sec))

    table = torch.randn(n, args.channels, generator=gen)
    index = torch.randint(n, (args.batch_nodes * 6, ), generator=gen)
    buffer = torch.empty(index.numel(), args.channels)
    dst = torch.empty(index.numel(), args.channels)

    def read():
        ops.read_async(table, None, None, index, buffer, dst)

    native, fallback, _ = side_by_side(read, read, args.repeat)
    rows.append(table_row(f'read_async, CPU ({index.numel():,} rows x '
                    f'{args.channels})', native, fallback))

    header = ['op', 'native ms', 'fallback ms', 'speed-up', 'PyTorch ms',
              'speed-up over PyTorch']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    report = '\n'.join(lines)
    print(report)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('# Native kernels vs pure-PyTorch fallbacks (CPU)\n\n')
            f.write(f'Command: `python benchmark/ops.py --out {args.out}`\n\n')
            f.write(f'torch {torch.__version__}, '
                    f'{torch.get_num_threads()} threads; medians of '
                    f'{args.repeat} alternating runs.\n\n')
            f.write(report + '\n')


if __name__ == '__main__':
    main()
