r"""Native kernels against their pure-PyTorch fallbacks, side by side.

Measures :func:`torch_autoscale.ops.relabel_one_hop` (the loader's hot path),
:func:`torch_autoscale.ops.csr_transpose` (the transpose of every mini-batch
adjacency for the backward pass; also against PyTorch's own conversion,
:obj:`adj.t().to_sparse_csr()`) and the CPU path of
:func:`torch_autoscale.ops.read_async` (history gathers) on a random graph,
alternating the implementations in one run so that machine noise hits them
alike, and writes a table of medians and ratios (``--out``; every op's
medians are the records of the JSONL file beside it).

    python benchmark/ops.py
"""
import argparse
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

import torch

import torch_autoscale.typing
from torch_autoscale import ops
from torch_autoscale.utils.sparse import sparse_csr

import bench_util


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


def table_row(r: Dict[str, Any]) -> List[str]:
    native, fallback, torch_sec = r['native_s'], r['fallback_s'], r.get(
        'pytorch_s')
    cells = [r['op'], f'{1e3 * native:.1f}', f'{1e3 * fallback:.1f}',
             f'{fallback / native:.1f}x']
    if torch_sec is None:
        return cells + ['-', '-']
    return cells + [f'{1e3 * torch_sec:.1f}', f'{torch_sec / native:.1f}x']


def write_table(jsonl: str, path: str) -> str:
    records = bench_util.read_jsonl(jsonl)
    body = [
        f"torch {bench_util.values(records, 'torch')}, "
        f"{bench_util.values(records, 'threads')} threads; medians of "
        f"{bench_util.values(records, 'repeat')} alternating runs.", ''
    ] + bench_util.markdown_table(
        ['op', 'native ms', 'fallback ms', 'speed-up', 'PyTorch ms',
         'speed-up over PyTorch'], [table_row(r) for r in records])
    return bench_util.write_markdown(
        path, 'Native kernels vs pure-PyTorch fallbacks (CPU)',
        bench_util.commands(records), body)


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-nodes', type=int, default=1_000_000)
    parser.add_argument('--num-edges', type=int, default=10_000_000)
    parser.add_argument('--batch-nodes', type=int, default=50_000)
    parser.add_argument('--channels', type=int, default=128)
    parser.add_argument('--repeat', type=int, default=7)
    bench_util.add_output_options(parser, 'ops', skip_done=False)
    args = parser.parse_args(argv)
    jsonl = bench_util.jsonl_path(args.out)
    if args.table_only:
        text = write_table(jsonl, args.out)
        print(text)
        return text
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

    rows: List[Dict[str, Any]] = []

    def row(op: str, native: float, fallback: float,
            torch_sec: Optional[float] = None) -> None:
        rows.append(dict(op=op, native_s=native, fallback_s=fallback,
                         pytorch_s=torch_sec))

    def relabel():
        return ops.relabel_one_hop(rowptr, col, value, n_id, True)

    native, fallback, _ = side_by_side(relabel, relabel, args.repeat)
    row(f'relabel_one_hop ({n:,} nodes, {e:,} edges, batch '
        f'{args.batch_nodes:,})', native, fallback)

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
    row(f'csr_transpose ({args.batch_nodes:,} x {num_cols:,}, '
        f'{out_col.numel():,} entries)', native, fallback, torch_sec)

    table = torch.randn(n, args.channels, generator=gen)
    index = torch.randint(n, (args.batch_nodes * 6, ), generator=gen)
    buffer = torch.empty(index.numel(), args.channels)
    dst = torch.empty(index.numel(), args.channels)

    def read():
        ops.read_async(table, None, None, index, buffer, dst)

    native, fallback, _ = side_by_side(read, read, args.repeat)
    row(f'read_async, CPU ({index.numel():,} rows x {args.channels})',
        native, fallback)

    # One run measures every op: its records replace the file's.
    known = dict(threads=torch.get_num_threads(), repeat=args.repeat,
                 command=bench_util.command_line(__file__, argv),
                 **bench_util.provenance())
    bench_util.write_jsonl(jsonl, [dict(r, **known) for r in rows])
    text = write_table(jsonl, args.out)
    print(text)
    return text


if __name__ == '__main__':
    main()
