r"""Graph Segment Training on MalNet-Tiny: every variant with one CPU-feasible
configuration, several seeds; accuracy, ms per iteration and the memory of a
training step, plus step memory on the smallest and the largest graphs.

    python benchmark/gst.py --root data --seeds 3 --epochs 30

Each (variant, seed), and the step memory and step times of every variant
(measured first), are appended to the JSONL file beside the table
(``--out``) as soon as they are measured; ``--skip-done`` resumes and
``--table-only`` rebuilds the table.
"""
import argparse
import functools
import logging
import os.path as osp
import statistics
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

import bench_util

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


def key(r: Dict[str, Any]) -> Tuple:
    r"""What tells records apart: a training run by variant and seed, a
    measurement of all variants by its kind."""
    return (r.get('kind', 'run'), r['variant'], r.get('seed'))


def write_table(jsonl: str, path: str) -> str:
    r"""The tables of the records in :obj:`jsonl`: accuracy and time of the
    training runs, step memory by graph size, step times side by side."""
    records = bench_util.read_jsonl(jsonl)
    runs: Dict[str, List[Dict[str, Any]]] = {}
    memory: Dict[str, Dict[str, Any]] = {}
    timing: Dict[str, float] = {}
    for r in records:
        kind = r.get('kind', 'run')
        if kind == 'run':
            runs.setdefault(r['variant'], []).append(r)
        elif kind == 'memory_by_size':
            memory[r['variant']] = r
        elif kind == 'timing':
            timing[r['variant']] = r['ms_per_step']
    one = runs.get('gst-one')
    one_ms = statistics.mean(r['ms_per_iter'] for r in one) if one else None
    rows = []
    for variant in VARIANTS:
        rs = runs.get(variant)
        if not rs:
            continue
        acc, std = bench_util.mean_std(100 * r['test'] for r in rs)
        val, val_std = bench_util.mean_std(100 * r['val'] for r in rs)
        ms = statistics.mean(r['ms_per_iter'] for r in rs)
        ratio = f'{ms / one_ms:.2f}' if one_ms else '-'
        mem = max(r['step_memory_bytes'] for r in rs) / 2**20
        rows.append([variant, len(rs), bench_util.values(rs, 'epochs'),
                     f'{acc:.2f} ± {std:.2f}', f'{val:.2f} ± {val_std:.2f}',
                     f'{ms:.1f}', ratio, f'{mem:.2f}'])
    body = [
        f"torch {bench_util.values(records, 'torch')}; dataset "
        f"{bench_util.values(records, 'dataset')}. Test and validation "
        'accuracy (%) at the epoch of best validation accuracy (after head '
        'finetuning for +F), mean ± std over seeds; milliseconds per '
        'training iteration, mean over seeds; the largest memory of a '
        'training step (CPU: bytes autograd saves for the backward pass, '
        'see `torch_autoscale.utils.StepMemory`).', ''
    ] + bench_util.markdown_table(
        ['variant', 'seeds', 'epochs', 'test acc', 'val acc', 'ms / iter',
         'ms / GST-One', 'step memory (MiB)'], rows)
    if memory:
        first = next(iter(memory.values()))

        def span(key):
            return f"{min(first[key])}-{max(first[key])}"

        body += ['', 'Memory of one training step (MiB, one graph per '
                 'step, the largest over five graphs) on the smallest '
                 f"({span('small_nodes')} nodes), median-sized "
                 f"({span('median_nodes')} nodes) and largest "
                 f"({span('large_nodes')} nodes) graphs.", '']
        body += bench_util.markdown_table(
            ['variant', 'smallest', 'median', 'largest', 'largest / median'],
            [[variant, f"{row['small'] / 2**20:.3f}",
              f"{row['median'] / 2**20:.3f}",
              f"{row['large'] / 2**20:.3f}",
              f"{row['large'] / max(row['median'], 1):.1f}"]
             for variant, row in memory.items()])
    if timing:
        body += ['', 'Milliseconds per training step, side by side: every '
                 'variant on the same batches of training graphs, '
                 'interleaved round-robin (median over 20 steps):', '']
        body += bench_util.markdown_table(
            ['variant', 'ms / step', '/ GST-One'],
            [[variant, f'{value:.1f}', f"{value / timing['gst-one']:.2f}"]
             for variant, value in timing.items()])
    return bench_util.write_markdown(
        path, 'Graph Segment Training on MalNet-Tiny',
        bench_util.commands(records), body)


def main(argv: Optional[List[str]] = None) -> str:
    example = load_example()
    parser = example.parser()
    parser.description = __doc__.split('\n\n')[0]
    parser.add_argument('--seeds', type=int, default=3,
                        help='runs seeds --first-seed .. --seeds - 1')
    parser.add_argument('--first-seed', type=int, default=0,
                        help='to split the seeds over processes')
    parser.add_argument('--variants', nargs='*', default=list(VARIANTS))
    parser.add_argument('--full-pool', default=None, choices=['sum', 'mean'],
                        help='--pool of full-graph training (default: '
                        '--pool if given, else mean); sum pooling over a '
                        'whole graph scales its embedding with the graph '
                        'size')
    parser.add_argument('--threads', type=int, default=None)
    bench_util.add_output_options(parser, 'gst')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        known = dict(command=bench_util.command_line(__file__, argv),
                     **bench_util.provenance())
        todo = {('run', v, s) for v in args.variants
                for s in range(args.first_seed, args.seeds)}
        measured = not args.skip_done or not {
            kind for kind, _, _ in map(key, bench_util.read_jsonl(jsonl))
        } >= {'memory_by_size', 'timing'}
        if measured:
            todo |= {(k, v, None) for k in ('memory_by_size', 'timing')
                     for v in VARIANTS}
        # What a command redoes replaces its records; --skip-done keeps
        # the runs already there instead.
        records = bench_util.drop_jsonl(
            jsonl, lambda r: not args.skip_done and key(r) in todo or
            (measured and key(r)[0] != 'run'))
        done = {key(r) for r in records}
        if measured:
            segmented, splits = segmented_dataset(example, args)
            memory = memory_by_size(segmented, args)
            timing = timing_side_by_side(segmented, splits, args)
            bench_util.append_jsonl(jsonl, *[
                dict(kind='memory_by_size', variant=v, **row, **known)
                for v, row in memory.items()], *[
                dict(kind='timing', variant=v, ms_per_step=ms, **known)
                for v, ms in timing.items()])
        # Seeds outermost: every variant has a result before any has two.
        for seed in range(args.first_seed, args.seeds):
            for variant in args.variants:
                if ('run', variant, seed) in done:
                    continue
                run_args = variant_args(args, variant)
                run_args.seed = seed
                result = example.run(run_args)
                log.info('%s seed %d: test %.4f, %.1f ms/iter', variant,
                         seed, result['test'], result['ms_per_iter'])
                bench_util.append_jsonl(jsonl, dict(kind='run', **result,
                                                    **known))
    text = write_table(jsonl, args.out)
    print(text)
    return text


if __name__ == '__main__':
    main()
