r"""LPS-GNN's subgraph augmentation, measured: the paper's ablation rows.

For every dataset, seed and partition (METIS, as the GAS reference, or
LPMetis with the same number of parts), this prepares the graph four ways
-- as it is, with PageRank refinement (``pagerank``: in every part, the 5%
of nodes with the least PageRank within it lose their edges), with the
coarse graph's embedding appended to the features (``global``), and with
both -- and trains a GCN on each two ways: GAS (mini-batches of clusters
with their halo, histories) and cluster training (the subgraph a batch's
clusters induce, no halo, no histories; how LPS-GNN trains). It records
the test metric at the epoch of best validation metric (accuracy, or
ROC-AUC on tolokers) and the seconds of every preprocessing step.

The coarse graph of ``global`` is LPMetis' (kept with
``return_coarse=True``); METIS rows coarsen the graph with LPMetis for it,
and that time counts as the embedding's. Hyperparameters are the GCN
configs of the small benchmark (the GAS reference's) for Amazon-Computers
and Coauthor-CS; tolokers has none there and takes Amazon-Computers'.

    python benchmark/augmentation.py --root data --seeds 3 --skip-done
"""
import argparse
import logging
import os.path as osp
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from tqdm import tqdm

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.partition import (
    lpmetis,
    metis,
    permute,
    sort_by_cluster,
)
from torch_autoscale.transforms import CoarseEmbedding, PageRankRefine

import bench_util  # noqa: E402  (beside this script)

sys.path.insert(0, osp.join(bench_util.HERE, 'small'))
sys.path.insert(0, osp.join(bench_util.ROOT, 'examples'))
import training  # noqa: E402
from common import load_node_dataset  # noqa: E402

log = logging.getLogger('augmentation')

#: The config of every dataset (from ``small/configs/``).
CONFIGS = {
    'amazon-computers': 'gcn_amazon_computers',
    'coauthor-cs': 'gcn_coauthor_cs',
    'tolokers': 'gcn_amazon_computers',
}
AUGMENTATIONS = ('none', 'pagerank', 'global', 'both')
PARTITIONS = ('metis', 'lpmetis')
TRAINERS = ('gas', 'cluster')
#: What makes runs comparable: the rows of the table.
SETTING = ('dataset', 'partition', 'augmentation', 'trainer', 'epochs',
           'fraction', 'dim')


def roc_auc(score: torch.Tensor, y: torch.Tensor) -> float:
    r"""The area under the ROC curve of :obj:`score` for the binary labels
    :obj:`y`: the Mann-Whitney statistic, with tied scores counted half
    (neither PyG nor PyTorch has one, and scikit-learn is no dependency)."""
    score, y = score.double(), y.bool()
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float('nan')
    _, inverse, counts = torch.unique(score, return_inverse=True,
                                      return_counts=True)
    # Average rank (1-based) of every distinct score:
    ends = torch.cumsum(counts, 0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def metric(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
           binary: bool) -> float:
    if binary:
        return roc_auc(out[mask].softmax(-1)[:, 1], y[mask])
    return training.accuracy(out, y, mask)


def prepare(name: str, root: str, seed: int, method: str,
            augmentation: str, cfg: Dict[str, Any], fraction: float,
            dim: int) -> Tuple[Any, torch.Tensor, int, Dict[str, float]]:
    r"""The graph of :obj:`name` split by :obj:`seed`, partitioned,
    augmented and permuted, its cluster boundaries, the number of classes
    and the seconds of every preprocessing step."""
    data = load_node_dataset(name, root, seed)
    n, num_parts = data.num_nodes, cfg['num_parts']
    num_classes = int(data.y.max()) + 1
    data.x = data.x.float()
    sec: Dict[str, float] = {}
    t = time.perf_counter()
    coarse = None
    if method == 'metis':
        cluster = metis(data.edge_index, n, num_parts)
    else:
        cluster, coarse = lpmetis(data.edge_index, n, num_parts, seed=seed,
                                  verbose=False, return_coarse=True)
    sec['partition_sec'] = time.perf_counter() - t
    if augmentation in ('global', 'both'):
        t = time.perf_counter()
        if coarse is None:  # METIS keeps no coarse graph: coarsen for it.
            _, coarse = lpmetis(data.edge_index, n, num_parts, seed=seed,
                                verbose=False, return_coarse=True)
        data = CoarseEmbedding(coarse, dim=dim)(data)
        sec['global_sec'] = time.perf_counter() - t
    if augmentation in ('pagerank', 'both'):
        t = time.perf_counter()
        data.cluster = cluster
        data = PageRankRefine(fraction)(data)
        sec['pagerank_sec'] = time.perf_counter() - t
        del data.cluster, data.refined_out
    data.adj_t = training.prepare_adj(data, cfg.get('adj', 'raw'))
    perm, ptr = sort_by_cluster(cluster, num_parts)
    del data.edge_index
    data = permute(data, perm)
    data.x = training.prepare_features(data.x, 'auto')
    return data, ptr, num_classes, sec


def train(cfg: Dict[str, Any], data, ptr, num_classes: int, seed: int,
          trainer: str, epochs: int, binary: bool,
          progress: bool) -> Tuple[float, float, float]:
    r"""Trains a fresh model with :obj:`trainer` (:obj:`"gas"` or
    :obj:`"cluster"`) and returns the best validation metric, the test
    metric at its epoch and the mean training seconds per epoch."""
    torch.manual_seed(seed)
    gas = trainer == 'gas'
    loader = SubgraphLoader(data, ptr, batch_size=cfg['batch_size'],
                            shuffle=True, halo=gas)
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=cfg['batch_size'])
    model = training.make_model(cfg, data, num_classes)
    groups = model.param_groups(cfg['weight_decay'],
                                cfg.get('nonreg_weight_decay', 0.0))
    optimizer = torch.optim.Adam(groups, lr=cfg['lr'])
    clip = cfg.get('grad_clip')
    if gas:
        model.mini_inference(eval_loader, progress=False)
    best_val, test, times = -1.0, 0.0, []
    for _ in tqdm(range(epochs), desc=f'{trainer} seed {seed}',
                  disable=not progress, leave=False):
        model.train()
        start = time.perf_counter()
        if gas:
            training.gas_epoch(model, optimizer, loader, clip)
        else:
            for batch in loader:
                mask = batch.data.train_mask
                if bool(mask.any()):
                    optimizer.zero_grad()
                    out = model(batch.data.x, batch.data.adj_t)
                    training.step(model, optimizer, out, batch.data.y, mask,
                                  clip)
        times.append(time.perf_counter() - start)
        with torch.no_grad():  # Exact, and refreshes GAS' histories.
            out = model.mini_inference(eval_loader, progress=False)
        val = metric(out, data.y, data.val_mask, binary)
        if val > best_val:
            best_val = val
            test = metric(out, data.y, data.test_mask, binary)
    return best_val, test, statistics.mean(times[1:] or times)


def setting(r: Dict[str, Any]) -> Tuple:
    return tuple(r.get(k) for k in SETTING)


def write_table(jsonl: str, path: str) -> str:
    records = bench_util.read_jsonl(jsonl)
    rows: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in records:
        rows.setdefault(setting(r), []).append(r)
    order = {k: i for i, k in enumerate(
        list(CONFIGS) + list(PARTITIONS) + list(AUGMENTATIONS) +
        list(TRAINERS))}
    body_rows = []
    for key in sorted(rows, key=lambda k: tuple(order.get(v, 99) if
                                                isinstance(v, str) else v
                                                for v in k)):
        rs = rows[key]
        first = rs[0]
        base = rows.get(key[:2] + ('none', ) + key[3:], [])
        by_seed = {b['seed']: b['test'] for b in base}
        diffs = [r['test'] - by_seed[r['seed']] for r in rs
                 if r['seed'] in by_seed]
        diff = '–'
        if first['augmentation'] != 'none' and len(diffs) > 1:
            mean = statistics.mean(diffs)
            se = statistics.stdev(diffs) / len(diffs)**0.5
            diff = f'{100 * mean:+.2f} ± {100 * se:.2f}'
        test = [r['test'] for r in rs]
        pre = []
        for step in ('partition_sec', 'global_sec', 'pagerank_sec'):
            vals = [r[step] for r in rs if step in r]
            pre.append(f'{statistics.mean(vals):.2f}' if vals else '–')
        m, s = bench_util.mean_std(test)
        body_rows.append([
            first['dataset'], first['metric'], first['partition'],
            first['augmentation'], first['trainer'],
            len({r['seed'] for r in rs}), first['epochs'],
            f'{100 * m:.2f} ± {100 * s:.2f}', diff, *pre,
            f"{statistics.mean(r['sec'] for r in rs):.3f}",
            bench_util.values(rs, 'threads'),
            ', '.join(sorted({r['commit'][:7] for r in rs}))])
    header = ['dataset', 'metric', 'partition', 'augmentation', 'trainer',
              'seeds', 'epochs', 'test (%)',
              'vs none (paired, ± s.e.)', 'partition s', 'global s',
              'pagerank s', 'train s/epoch', 'threads', 'commit']
    body = [
        f"torch {bench_util.values(records, 'torch')}. Test metric at the "
        'epoch of best validation metric, mean ± std over seeds; vs none: '
        'the per-seed difference to the same partition and trainer '
        'without augmentation, mean ± its standard error; seconds of the '
        'preprocessing steps (global: coarse-graph embedding, including '
        'the coarsening for METIS rows; pagerank: the refinement), mean '
        'over seeds; training seconds per epoch (evaluation excluded).',
        ''
    ] + bench_util.markdown_table(header, body_rows)
    return bench_util.write_markdown(
        path, "LPS-GNN's subgraph augmentation: GAS and cluster training",
        bench_util.commands(records), body)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--datasets', nargs='+', default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--partitions', nargs='+', default=list(PARTITIONS),
                        choices=PARTITIONS)
    parser.add_argument('--augmentations', nargs='+',
                        default=list(AUGMENTATIONS), choices=AUGMENTATIONS)
    parser.add_argument('--trainers', nargs='+', default=list(TRAINERS),
                        choices=TRAINERS)
    parser.add_argument('--epochs', type=int, default=None,
                        help='override the configs (smoke runs only)')
    parser.add_argument('--fraction', type=float, default=0.05,
                        help="PageRank refinement's share of every part's "
                        "nodes (default: 0.05, the paper's)")
    parser.add_argument('--dim', type=int, default=16,
                        help='the coarse embedding size (default: 16)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--quiet', action='store_true')
    bench_util.add_output_options(parser, 'augmentation')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    logging.getLogger('torch_autoscale').setLevel(logging.WARNING)
    torch.sparse.check_sparse_tensor_invariants.disable()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        known = dict(command=bench_util.command_line(__file__, argv),
                     threads=torch.get_num_threads(),
                     **bench_util.provenance())

        def done() -> set:  # Read again each time: runs may be split
            # across processes (each on its own datasets).
            return {setting(r) + (r['seed'], )
                    for r in bench_util.read_jsonl(jsonl)
                    } if args.skip_done else set()
        # Seeds outermost: an interrupted run has some of every dataset.
        for seed in range(args.seeds):
            for name in args.datasets:
                cfg = training.load_config(CONFIGS[name])
                epochs = args.epochs or cfg['epochs']
                binary = name == 'tolokers'
                for method in args.partitions:
                    for aug in args.augmentations:
                        base = dict(dataset=name, partition=method,
                                    augmentation=aug, epochs=epochs,
                                    fraction=args.fraction, dim=args.dim)
                        finished = done()
                        todo = [t for t in args.trainers
                                if setting(dict(base, trainer=t)) +
                                (seed, ) not in finished]
                        if not todo:
                            continue
                        data, ptr, num_classes, sec = prepare(
                            name, args.root, seed, method, aug, cfg,
                            args.fraction, args.dim)
                        for trainer in todo:
                            val, test, s = train(cfg, data, ptr, num_classes,
                                                 seed, trainer, epochs,
                                                 binary, not args.quiet)
                            run = dict(base, trainer=trainer, seed=seed,
                                       metric='roc-auc' if binary else
                                       'accuracy', val=val, test=test,
                                       sec=s, config=cfg['name'], **sec,
                                       **known)
                            bench_util.drop_jsonl(
                                jsonl, lambda r: setting(r) + (r['seed'], )
                                == setting(run) + (seed, ))
                            bench_util.append_jsonl(jsonl, run)
                            log.info('%s %s %s %s seed %d: val %.4f test '
                                     '%.4f', name, method, aug, trainer,
                                     seed, val, test)
    print(write_table(jsonl, args.out))


if __name__ == '__main__':
    main()
