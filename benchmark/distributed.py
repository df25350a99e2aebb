r"""Data-parallel GAS: seconds per epoch and accuracy of one and two processes
with shared-memory and sharded histories, side by side.

    python benchmark/distributed.py --root data --seeds 5

Every run is ``torchrun --standalone --nproc-per-node P
examples/train_gcn_distributed.py`` (gloo on CPUs) with the dataset's
reference hyperparameters; a step covers the same clusters at any number of
processes. Configurations run interleaved seed by seed, so that load on the
machine hits all of them alike. Each run is saved as JSON under
``--out-dir`` as soon as it ends; ``--skip-done`` resumes and
``--table-only`` rebuilds the table.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

import torch

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


def name(dataset: str, config: Tuple[int, int, str], seed: int) -> str:
    procs, threads, history = config
    return f'{dataset}_{history}_p{procs}_t{threads}_s{seed}'


def run_one(args, dataset: str, config: Tuple[int, int, str], seed: int,
            path: str) -> None:
    procs, threads, history = config
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           '--nproc-per-node', str(procs), EXAMPLE, '--dataset', dataset,
           '--root', args.root, '--history', history, '--seed', str(seed),
           '--threads', str(threads), '--json', path, '--quiet']
    if args.epochs is not None:
        cmd += ['--epochs', str(args.epochs)]
    if dataset == 'synthetic':
        cmd += ['--num-nodes', str(args.num_nodes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=args.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


def available(dataset: str, root: str) -> bool:
    if dataset == 'synthetic':
        return True
    folder = {'cora': 'Planetoid/Cora', 'amazon-computers':
              'Amazon/Computers', 'coauthor-cs': 'Coauthor/CS'}[dataset]
    return osp.isdir(osp.join(root, folder))


def write_table(out_dir: str, path: str, command: str) -> str:
    runs: Dict[Tuple[str, int, int, str], List[dict]] = {}
    for file in sorted(glob.glob(osp.join(out_dir, '*.json'))):
        with open(file) as f:
            r = json.load(f)
        key = (r['dataset'], r['world_size'], r['threads'], r['history'])
        runs.setdefault(key, []).append(r)
    lines = [
        '# Data-parallel GAS: one and two processes', '',
        'Produced by (from the repository root, datasets unpacked into '
        '`data/`):', '', '```bash', command, '```', '',
        f'torch {torch.__version__}, gloo on the CPU. GCN with the '
        'reference hyperparameters of `examples/train_gcn.py`; a step '
        'covers the same clusters at one and two processes (each of two '
        'takes half). Test accuracy (%) at the epoch of best validation '
        'accuracy, mean ± std over seeds; seconds per training epoch '
        '(median over epochs, then over seeds; evaluation excluded). '
        '`acc − 1 process` and `speed-up` compare with one process, one '
        'thread, sharded histories (with one process both modes hold one '
        'local table). Two processes of one thread use the cores of one '
        'process of two threads (the `1 | 2` row): on a machine with two '
        'cores that row, not one thread, is the fair baseline. On small '
        'graphs, per-step collectives (gradients; halo rows of sharded '
        'histories, three `all_to_all` per layer) cost about as much as '
        'the compute they split.', '',
        '| dataset | processes | threads / process | histories | seeds | '
        'test acc | acc − 1 process | s / epoch | speed-up |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
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
            acc = [100 * r['test'] for r in rs]
            std = statistics.stdev(acc) if len(acc) > 1 else 0.0
            mean = statistics.mean(acc)
            sec = statistics.median(r['sec_per_epoch'] for r in rs)
            delta = f'{mean - base_acc:+.2f}' if base_acc is not None else '-'
            speed = f'{base_sec / sec:.2f}' if base_sec else '-'
            lines.append(f'| {dataset} | {procs} | {threads} | {history} | '
                         f'{len(rs)} | {mean:.2f} ± {std:.2f} | {delta} | '
                         f'{sec:.4f} | {speed} |')
    text = '\n'.join(lines) + '\n'
    with open(path, 'w') as f:
        f.write(text)
    return text


def main():
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
    parser.add_argument('--out-dir',
                        default=osp.join(HERE, 'results', 'distributed'))
    parser.add_argument('--table',
                        default=osp.join(HERE, 'results', 'distributed.md'))
    parser.add_argument('--skip-done', action='store_true')
    parser.add_argument('--table-only', action='store_true')
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    command = 'python benchmark/distributed.py ' + ' '.join(sys.argv[1:])
    if args.table_only and osp.exists(args.table):  # Keep the producer's.
        with open(args.table) as f:
            lines = f.read().split('\n')
        if '```bash' in lines:
            command = lines[lines.index('```bash') + 1]
    if not args.table_only:
        datasets = []
        for dataset in args.datasets:
            if available(dataset, args.root):
                datasets.append(dataset)
            else:
                print(f'{dataset}: not found under {args.root}, skipped')
        for seed in range(args.seeds):
            for dataset in datasets:
                for config in CONFIGS:
                    path = osp.join(args.out_dir,
                                    name(dataset, config, seed) + '.json')
                    if args.skip_done and osp.exists(path):
                        continue
                    run_one(args, dataset, config, seed, path)
                    with open(path) as f:
                        r = json.load(f)
                    print(f"{name(dataset, config, seed)}: test "
                          f"{r['test']:.4f}, {r['sec_per_epoch']:.4f} s/epoch",
                          flush=True)
    print(write_table(args.out_dir, args.table, command))


if __name__ == '__main__':
    main()
