r"""GAS and full-batch epochs on the CPU with glibc's default allocator
settings against settings that keep large blocks.

glibc serves every allocation above its mmap threshold (at most 32 MiB by
default) with a fresh ``mmap`` and returns it to the system when freed, so
each new tensor that size pays a page fault per 4 KiB page on first touch. A
GAS step allocates several: the input features of the batch and its halo
(11,587 x 767 floats, 36 MB, per Amazon-Computers batch), their dropout mask
and the product. ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
make glibc keep such blocks for reuse. They must be set before the process
starts, so every measurement runs in a process of its own; the settings
alternate, repeat after repeat, so that drift of a shared machine hits both.

    python benchmark/cpu_malloc.py --root data --repeats 3
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import bench_util

HERE = osp.dirname(osp.abspath(__file__))

#: The environment of the tuned runs: keep freed blocks of any size.
TUNED = {'MALLOC_MMAP_THRESHOLD_': str(1 << 32),
         'MALLOC_TRIM_THRESHOLD_': str(1 << 32)}
SETTINGS = ('default', 'tuned')


def worker(config: str, root: str, epochs: int, threads: int) -> None:
    import torch
    sys.path.insert(0, osp.join(HERE, 'small'))
    import training  # noqa: E402
    torch.set_num_threads(threads)
    torch.sparse.check_sparse_tensor_invariants.disable()
    cfg = training.load_config(config)
    data, ptr, num_classes = training.prepare(cfg, root, seed=0)
    out = {}
    for key, gas in (('gas', True), ('full', False)):
        _, _, sec = training.train(cfg, data, ptr, num_classes, seed=0,
                                   gas=gas, epochs=epochs, progress=False)
        out[key] = sec
    print(json.dumps(out))


def measure(config: str, setting: str, args) -> Dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for key in TUNED:
        env.pop(key, None)
    if setting == 'tuned':
        env.update(TUNED)
    proc = subprocess.run(
        [sys.executable, __file__, '--worker', config, '--root', args.root,
         '--epochs', str(args.epochs), '--threads', str(args.threads)],
        env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(records: List[Dict[str, Any]]) -> Tuple[str, List[str]]:
    r"""The title and body of the table of :obj:`records` (one per config,
    setting and repeat): medians over the repeats and their ratios."""
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for r in records:
        runs.setdefault(r['config'], {s: [] for s in SETTINGS})
        runs[r['config']][r['setting']].append(r)
    rows = []
    for config, by in runs.items():
        med = {s: {m: statistics.median(r[m] for r in by[s])
                   for m in ('gas', 'full')} for s in SETTINGS}
        cells = [med[s][m] for m in ('gas', 'full') for s in SETTINGS]
        rows.append([config] + [f'{c:.4f}' for c in cells] + [
            f"{med['tuned'][m] / med['default'][m]:.2f}"
            for m in ('gas', 'full')] + [
            f"{med[s]['gas'] / med[s]['full']:.2f}" for s in SETTINGS])
    body = [
        f"torch {bench_util.values(records, 'torch')}, "
        f"{bench_util.values(records, 'threads')} thread(s). Training "
        'seconds per epoch (first epoch excluded, evaluation excluded), '
        'median over the repeats, each repeat a fresh process per setting, '
        'settings alternating. `tuned`: ' + ', '.join(
            f'`{k}={v}`' for k, v in TUNED.items()) + '.', ''
    ] + bench_util.markdown_table(
        ['config', 'GAS default', 'GAS tuned', 'full default', 'full tuned',
         'GAS tuned / default', 'full tuned / default',
         'GAS / full, default', 'GAS / full, tuned'], rows)
    return 'GAS and full-batch CPU epochs: glibc allocator settings', body


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--configs', nargs='+',
                        default=['gcn_amazon_computers',
                                 'appnp_amazon_computers',
                                 'gcn_coauthor_cs'])
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    bench_util.add_output_options(parser, 'cpu_malloc', skip_done=False)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.root, args.epochs, args.threads)
        return ''
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        if sys.platform != 'linux':
            parser.error('the allocator settings are glibc\'s (Linux)')
        known = dict(epochs=args.epochs, threads=args.threads,
                     command=bench_util.command_line(__file__, argv),
                     **bench_util.provenance())
        # A config measured again replaces its earlier records.
        bench_util.drop_jsonl(jsonl, lambda r: r['config'] in args.configs)
        for config in args.configs:
            for repeat in range(args.repeats):
                for setting in SETTINGS:
                    bench_util.append_jsonl(jsonl, dict(
                        config=config, setting=setting, repeat=repeat,
                        **measure(config, setting, args), **known))
    return bench_util.write_table(args.out, table)


if __name__ == '__main__':
    main()
