r"""Graph Segment Training on MalNet-Tiny: every variant with one CPU-feasible
configuration, several seeds; accuracy, ms per iteration and the memory of a
training step, plus step memory on the smallest and the largest graphs.

    python benchmark/gst.py --root data --seeds 3 --epochs 30

Each (variant, seed) is saved as JSON under ``--out-dir`` as soon as it ends;
``--skip-done`` resumes and ``--table-only`` rebuilds the table.
"""
import argparse
import functools
import glob
import json
import logging
import os
import os.path as osp
import statistics
import sys
from typing import Any, Dict, List

import torch
import torch.nn.functional as F

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
VARIANTS = ('full', 'gst', 'gst-one', 'gst-e', 'gst-efd')
log = logging.getLogger('gst')


@functools.lru_cache(maxsize=None)
def load_example():
    from torch_autoscale.testing import load_script
    return load_script(osp.join(ROOT, 'examples', 'train_gst.py'),
                       'train_gst')


def segmented_dataset(example, args):
    r"""The segmented dataset of the benchmark and its splits."""
    from torch_autoscale.segment import SegmentedDataset
    dataset, splits = example.load(args.dataset, args.root, 0,
                                   args.max_graphs)
    used = sorted(set(sum(splits.values(), [])))
    subset = dataset if args.max_graphs is None else dataset[used]
    if args.max_graphs is not None:
        where = {g: i for i, g in enumerate(used)}
        splits = {k: [where[g] for g in v] for k, v in splits.items()}
    segmented = SegmentedDataset(
        subset, args.max_segment_size,
        cache=None if args.max_graphs is None else False, progress=False)
    return segmented, splits


def variant_args(args: argparse.Namespace,
                 variant: str) -> argparse.Namespace:
    r"""The arguments of one variant: :obj:`--full-pool` replaces
    :obj:`--pool` for full-graph training."""
    out = argparse.Namespace(**vars(args))
    out.variant = variant
    if variant == 'full' and args.full_pool is not None:
        out.pool = args.full_pool
    return out


def make_model(segmented, args, variant: str):
    from torch_autoscale.segment import GSTModel
    torch.manual_seed(0)
    args = variant_args(args, variant)
    num_classes = int(segmented.y.max()) + 1
    encoder = load_example().make_encoder(args, segmented[0].x.size(-1))
    return GSTModel(encoder, torch.nn.Linear(args.hidden, num_classes),
                    num_segments=segmented.num_segments, variant=variant,
                    keep_prob=args.keep_prob)


def memory_by_size(segmented, args, count: int = 5) -> Dict[str, Dict]:
    r"""The memory of one training step (batch of one graph) on the
    :obj:`count` smallest, median-sized and largest graphs, for every
    variant."""
    from torch_autoscale.segment import SegmentLoader
    from torch_autoscale.utils import StepMemory
    sizes = torch.tensor([segmented[i].num_nodes
                          for i in range(len(segmented))])
    order = sizes.argsort()
    mid = order.numel() // 2
    groups = dict(small=order[:count].tolist(),
                  median=order[mid - count // 2:mid - count // 2 +
                               count].tolist(),
                  large=order[-count:].tolist())
    out: Dict[str, Dict] = {}
    for variant in VARIANTS:
        model = make_model(segmented, args, variant)
        model.train()
        row = {}
        for name, ids in groups.items():
            loader = SegmentLoader(segmented, indices=ids,
                                   **model.loader_options)
            peak = 0
            for batch in loader:
                with StepMemory() as mem:
                    F.cross_entropy(model(batch), batch.y).backward()
                peak = max(peak, mem.peak_bytes)
            row[name] = peak
            row[f'{name}_nodes'] = [int(sizes[i]) for i in ids]
        out[variant] = row
    return out


def timing_side_by_side(segmented, splits, args,
                        steps: int = 20) -> Dict[str, float]:
    r"""Median milliseconds of a training step (forward, backward, Adam) of
    every variant on the same :obj:`steps` batches of training graphs,
    interleaved round-robin so that load on the machine hits all variants
    alike."""
    import time

    from torch_autoscale.segment import SegmentLoader
    gen = torch.Generator().manual_seed(0)
    train = torch.tensor(splits['train'])
    batches = [train[torch.randperm(train.numel(), generator=gen)
                     [:args.batch_size]].tolist() for _ in range(steps + 2)]
    models = {v: make_model(segmented, args, v) for v in VARIANTS}
    optimizers = {v: torch.optim.Adam(m.parameters(), lr=args.lr)
                  for v, m in models.items()}
    times: Dict[str, List[float]] = {v: [] for v in VARIANTS}
    for i, ids in enumerate(batches):
        for variant, model in models.items():
            torch.manual_seed(i)  # The same sampled segments for all.
            loader = SegmentLoader(segmented, batch_size=len(ids),
                                   indices=ids, **model.loader_options)
            batch = next(iter(loader))
            model.train()
            start = time.perf_counter()
            optimizers[variant].zero_grad()
            F.cross_entropy(model(batch), batch.y).backward()
            optimizers[variant].step()
            if i >= 2:  # Two warm-up rounds.
                times[variant].append(1000 * (time.perf_counter() - start))
    return {v: statistics.median(t) for v, t in times.items()}


def write_table(out_dir: str, path: str, command: List[str]) -> str:
    runs: Dict[str, List[Dict[str, Any]]] = {}
    command = list(command)
    for file in sorted(glob.glob(osp.join(out_dir, '*_seed*.json'))):
        with open(file) as f:
            r = json.load(f)
        runs.setdefault(r['variant'], []).append(r)
        if r.get('command') and r['command'] not in command:
            command.insert(0, r['command'])
    lines = ['# Graph Segment Training on MalNet-Tiny', '',
             'Produced by (from the repository root, datasets unpacked '
             'into `data/`):', '', '```bash'] + command + ['```', '',
             'Test and validation accuracy (%) at the epoch of best '
             'validation accuracy (after head finetuning for +F), mean ± std '
             'over seeds; median '
             'milliseconds per training iteration; the largest memory of a '
             'training step (CPU: bytes autograd saves for the backward '
             'pass, see `torch_autoscale.utils.StepMemory`).', '',
             '| variant | seeds | test acc | val acc | ms / iter | '
             'ms / GST-One | step memory (MiB) |',
             '|---|---|---|---|---|---|---|']
    one = runs.get('gst-one')
    one_ms = statistics.mean(r['ms_per_iter'] for r in one) if one else None
    for variant in VARIANTS:
        rs = runs.get(variant)
        if not rs:
            continue
        acc = [100 * r['test'] for r in rs]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        val = [100 * r['val'] for r in rs]
        val_std = statistics.stdev(val) if len(val) > 1 else 0.0
        ms = statistics.mean(r['ms_per_iter'] for r in rs)
        ratio = f'{ms / one_ms:.2f}' if one_ms else '-'
        mem = max(r['step_memory_bytes'] for r in rs) / 2**20
        lines.append(f'| {variant} | {len(rs)} | {statistics.mean(acc):.2f} '
                     f'± {std:.2f} | {statistics.mean(val):.2f} ± '
                     f'{val_std:.2f} | {ms:.1f} | {ratio} | {mem:.2f} |')
    mem_path = osp.join(out_dir, 'memory_by_size.json')
    if osp.exists(mem_path):
        with open(mem_path) as f:
            mem = json.load(f)
        first = next(iter(mem.values()))

        def span(key):
            return f"{min(first[key])}-{max(first[key])}"

        lines += ['', 'Memory of one training step (MiB, one graph per '
                  'step, the largest over five graphs) on the smallest '
                  f"({span('small_nodes')} nodes), median-sized "
                  f"({span('median_nodes')} nodes) and largest "
                  f"({span('large_nodes')} nodes) graphs. Segment variants "
                  'are bounded by one segment of at most '
                  '`--max-segment-size` nodes; full-graph training grows '
                  'with the graph.', '',
                  '| variant | smallest | median | largest | largest / '
                  'median |', '|---|---|---|---|---|']
        for variant, row in mem.items():
            lines.append(f"| {variant} | {row['small'] / 2**20:.3f} | "
                         f"{row['median'] / 2**20:.3f} | "
                         f"{row['large'] / 2**20:.3f} | "
                         f"{row['large'] / max(row['median'], 1):.1f} |")
    time_path = osp.join(out_dir, 'timing.json')
    if osp.exists(time_path):
        with open(time_path) as f:
            ms = json.load(f)
        lines += ['', 'Milliseconds per training step, side by side: every '
                  'variant on the same batches of training graphs, '
                  'interleaved round-robin (median over 20 steps):', '',
                  '| variant | ms / step | / GST-One |', '|---|---|---|']
        for variant, value in ms.items():
            lines.append(f"| {variant} | {value:.1f} | "
                         f"{value / ms['gst-one']:.2f} |")
    lines += ['', '## Notes', '',
              '* One configuration for every variant, the paper\'s '
              'GraphGym configuration at a CPU-feasible width: GraphSAGE '
              'encoder (pre-MP linear and two layers, each followed by batch '
              'normalization and PReLU; unit-length node embeddings; sum '
              'pooling over every segment), mean of the segment embeddings, '
              'a linear head; hidden 64, 16 graphs per step, Adam lr 0.01 '
              "with cosine annealing (the default schedule of the paper's "
              'code), weight decay 1e-4, segments of at most 500 nodes '
              '(METIS), p = 0.5, head finetuning for 100 epochs (cosine as '
              'well). One exception, chosen on validation accuracy '
              '(`gst_pilot.md`): full-graph training pools by the mean '
              '(`--full-pool mean`), as summing over a whole graph scales its '
              'embedding with the graph size.',
              '* The paper trains 600 epochs on a GPU; these runs train the '
              'number of epochs in the command. A segment variant sees one '
              'segment of every graph per epoch.']
    notes_path = osp.join(out_dir, 'notes.md')
    if osp.exists(notes_path):  # Hand-written reading of these results.
        with open(notes_path) as f:
            lines += ['', f.read().strip()]
    text = '\n'.join(lines) + '\n'
    with open(path, 'w') as f:
        f.write(text)
    return text


def main():
    example = load_example()
    parser = example.parser()
    parser.description = __doc__.split('\n\n')[0]
    parser.add_argument('--seeds', type=int, default=3,
                        help='runs seeds --first-seed .. --seeds - 1')
    parser.add_argument('--first-seed', type=int, default=0,
                        help='to split the seeds over processes')
    parser.add_argument('--variants', nargs='*', default=list(VARIANTS))
    parser.add_argument('--out-dir',
                        default=osp.join(ROOT, 'benchmark', 'results', 'gst'))
    parser.add_argument('--table',
                        default=osp.join(ROOT, 'benchmark', 'results',
                                         'gst.md'))
    parser.add_argument('--full-pool', default=None, choices=['sum', 'mean'],
                        help='--pool of full-graph training (default: '
                        '--pool if given, else mean); sum pooling over a '
                        'whole graph scales its embedding with the graph '
                        'size')
    parser.add_argument('--skip-done', action='store_true')
    parser.add_argument('--table-only', action='store_true')
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    # A table rebuilt with --table-only lists the commands of its runs only.
    command = [] if args.table_only else [
        'python benchmark/gst.py ' +
        ' '.join(a for a in sys.argv[1:] if a != '--quiet')
    ]
    if not args.table_only:
        mem_path = osp.join(args.out_dir, 'memory_by_size.json')
        time_path = osp.join(args.out_dir, 'timing.json')
        if not (args.skip_done and osp.exists(mem_path)
                and osp.exists(time_path)):
            segmented, splits = segmented_dataset(example, args)
            # Measure first, then write: a file that exists is complete.
            memory = memory_by_size(segmented, args)
            with open(mem_path, 'w') as f:
                json.dump(memory, f, indent=1)
            timing = timing_side_by_side(segmented, splits, args)
            with open(time_path, 'w') as f:
                json.dump(timing, f, indent=1)
        # Seeds outermost: every variant has a result before any has two.
        for seed in range(args.first_seed, args.seeds):
            for variant in args.variants:
                path = osp.join(args.out_dir, f'{variant}_seed{seed}.json')
                if args.skip_done and osp.exists(path):
                    continue
                run_args = variant_args(args, variant)
                run_args.seed = seed
                result = example.run(run_args)
                result['command'] = command[0]
                log.info('%s seed %d: test %.4f, %.1f ms/iter', variant,
                         seed, result['test'], result['ms_per_iter'])
                with open(path, 'w') as f:
                    json.dump(result, f, indent=1)
    print(write_table(args.out_dir, args.table, command))


if __name__ == '__main__':
    main()
