r"""Native kernels against their pure-PyTorch fallbacks, side by side.

Measures :func:`torch_autoscale.ops.relabel_one_hop` (the loader's hot path)
and the CPU path of :func:`torch_autoscale.ops.read_async` (history gathers)
on a random graph, alternating native and fallback calls in one run so that
machine noise hits both alike, and prints a table of medians and ratios.

    python benchmark/ops.py --out benchmark/results/ops.md
"""
import argparse
import statistics
import time
from typing import Callable, List

import torch

import torch_autoscale.typing
from torch_autoscale import ops


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(native: Callable, fallback: Callable, repeat: int):
    times = {'native': [], 'fallback': []}
    for _ in range(repeat):
        torch_autoscale.typing.WITH_NATIVE = True
        times['native'].append(timed(native))
        torch_autoscale.typing.WITH_NATIVE = False
        times['fallback'].append(timed(fallback))
    torch_autoscale.typing.WITH_NATIVE = True
    return (statistics.median(times['native']),
            statistics.median(times['fallback']))


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

    native, fallback = side_by_side(relabel, relabel, args.repeat)
    rows.append([
        f'relabel_one_hop ({n:,} nodes, {e:,} edges, batch '
        f'{args.batch_nodes:,})', f'{1e3 * native:.1f}',
        f'{1e3 * fallback:.1f}', f'{fallback / native:.1f}x'
    ])

    table = torch.randn(n, args.channels, generator=gen)
    index = torch.randint(n, (args.batch_nodes * 6, ), generator=gen)
    buffer = torch.empty(index.numel(), args.channels)
    dst = torch.empty(index.numel(), args.channels)

    def read():
        ops.read_async(table, None, None, index, buffer, dst)

    native, fallback = side_by_side(read, read, args.repeat)
    rows.append([
        f'read_async, CPU ({index.numel():,} rows x {args.channels})',
        f'{1e3 * native:.1f}', f'{1e3 * fallback:.1f}',
        f'{fallback / native:.1f}x'
    ])

    header = ['op', 'native ms', 'fallback ms', 'speed-up']
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
