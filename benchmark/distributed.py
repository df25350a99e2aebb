r"""Data-parallel GAS: seconds per epoch and accuracy of one and two processes
with shared-memory and sharded histories, side by side.

    python benchmark/distributed.py --root data --seeds 5

Every run is ``torchrun --standalone --nproc-per-node P
examples/train_gcn_distributed.py`` (gloo on CPUs) with the dataset's
reference hyperparameters; a step covers the same clusters at any number of
processes. Configurations run interleaved seed by seed, so that load on the
machine hits all of them alike. Each run is appended to the JSONL file
beside the table (``--out``) as soon as it ends; ``--skip-done`` resumes and
``--table-only`` rebuilds the table.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import bench_util

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
EXAMPLE = osp.join(ROOT, 'examples', 'train_gcn_distributed.py')
#: (processes, intra-op threads per process, history mode).
CONFIGS: List[Tuple[int, int, str]] = [
    (1, 1, 'sharded'),
    (1, 1, 'shared'),
    (1, 2, 'sharded'),
    (2, 1, 'sharded'),
    (2, 1, 'shared'),
]


def key(r: Dict[str, Any]) -> Tuple:
    r"""What tells runs apart: dataset, configuration and seed."""
    return (r['dataset'], r['world_size'], r['threads'], r['history'],
            r['seed'])


def run_one(args, dataset: str, config: Tuple[int, int, str],
            seed: int) -> Dict[str, Any]:
    r"""One run of the example under ``torchrun``; returns its result."""
    procs, threads, history = config
    with tempfile.TemporaryDirectory(prefix='distributed-bench-') as tmp:
        path = osp.join(tmp, 'result.json')
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc-per-node', str(procs), EXAMPLE, '--dataset', dataset,
               '--root', args.root, '--history', history, '--seed',
               str(seed), '--threads', str(threads), '--json', path,
               '--quiet']
        if args.epochs is not None:
            cmd += ['--epochs', str(args.epochs)]
        if dataset == 'synthetic':
            cmd += ['--num-nodes', str(args.num_nodes)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=args.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n"
                               f"{proc.stderr[-3000:]}")
        with open(path) as f:
            result = json.load(f)
    # The example's summary of one run holds that run in 'runs'.
    return result['runs'][0] if result.get('runs') else result


def available(dataset: str, root: str) -> bool:
    if dataset == 'synthetic':
        return True
    folder = {'cora': 'Planetoid/Cora', 'amazon-computers':
              'Amazon/Computers', 'coauthor-cs': 'Coauthor/CS'}[dataset]
    return osp.isdir(osp.join(root, folder))


def write_table(jsonl: str, path: str) -> str:
    r"""The table of the runs in :obj:`jsonl`, one row per dataset and
    configuration."""
    records = bench_util.read_jsonl(jsonl)
    runs: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in records:
        runs.setdefault(key(r)[:4], []).append(r)
    rows = []
    for dataset in sorted({k[0] for k in runs}):
        base = runs.get((dataset, 1, 1, 'sharded'))
        base_acc = (statistics.mean(100 * r['test'] for r in base)
                    if base else None)
        base_sec = (statistics.median(r['sec_per_epoch'] for r in base)
                    if base else None)
        for procs, threads, history in CONFIGS:
            rs = runs.get((dataset, procs, threads, history))
            if not rs:
                continue
            mean, std = bench_util.mean_std(100 * r['test'] for r in rs)
            sec = statistics.median(r['sec_per_epoch'] for r in rs)
            delta = f'{mean - base_acc:+.2f}' if base_acc is not None else '-'
            speed = f'{base_sec / sec:.2f}' if base_sec else '-'
            nodes = bench_util.values(rs, 'num_nodes')
            rows.append([dataset, nodes, procs, threads, history, len(rs),
                         f'{mean:.2f} ± {std:.2f}', delta, f'{sec:.4f}',
                         speed])
    body = [
        f"torch {bench_util.values(records, 'torch')}, "
        f"{bench_util.values(records, 'backend')} on the CPU; "
        '`examples/train_gcn_distributed.py` under `torchrun`, one run per '
        'row and seed. Test accuracy (%) at the epoch of best validation '
        'accuracy, mean ± std over seeds; seconds per training epoch '
        '(median over epochs, then over seeds; evaluation excluded). '
        '`acc − 1 process` and `speed-up` compare with one process, one '
        'thread, sharded histories.', ''
    ] + bench_util.markdown_table(
        ['dataset', 'nodes', 'processes', 'threads / process', 'histories',
         'seeds', 'test acc', 'acc − 1 process', 's / epoch', 'speed-up'],
        rows)
    return bench_util.write_markdown(
        path, 'Data-parallel GAS: one and two processes',
        bench_util.commands(records), body)


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--datasets', nargs='*',
                        default=['cora', 'synthetic'],
                        choices=['cora', 'amazon-computers', 'coauthor-cs',
                                 'synthetic'])
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--epochs', type=int, default=None,
                        help="default: the dataset's reference epochs")
    parser.add_argument('--num-nodes', type=int, default=20_000,
                        help='nodes of the synthetic graph')
    parser.add_argument('--timeout', type=int, default=1800,
                        help='seconds one run may take')
    bench_util.add_output_options(parser, 'distributed')
    args = parser.parse_args(argv)
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        datasets = []
        for dataset in args.datasets:
            if available(dataset, args.root):
                datasets.append(dataset)
            else:
                print(f'{dataset}: not found under {args.root}, skipped')
        todo = {(d, p, t, h, s) for s in range(args.seeds) for d in datasets
                for p, t, h in CONFIGS}
        # Runs a command redoes replace their records; --skip-done keeps
        # them instead.
        records = bench_util.drop_jsonl(
            jsonl, lambda r: not args.skip_done and key(r) in todo)
        done = {key(r) for r in records}
        known = dict(command=bench_util.command_line(__file__, argv),
                     **bench_util.provenance())
        for seed in range(args.seeds):
            for dataset in datasets:
                for config in CONFIGS:
                    if (dataset, *config, seed) in done:
                        continue
                    r = dict(run_one(args, dataset, config, seed), **known)
                    bench_util.append_jsonl(jsonl, r)
                    print(f"{dataset} {config} seed {seed}: test "
                          f"{r['test']:.4f}, {r['sec_per_epoch']:.4f} "
                          's/epoch', flush=True)
    text = write_table(jsonl, args.out)
    print(text)
    return text


if __name__ == '__main__':
    main()
