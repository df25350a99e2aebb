r"""The GNNAutoScale small benchmark: GAS against full-batch training.

For every config in ``benchmark/small/configs/`` (one per model and dataset,
holding the reference hyperparameters of the GAS paper's code), this trains
the model with GAS (METIS clusters, histories, layer-wise inference for
evaluation) and the same architecture full-batch, seed after seed, side by
side in one process, and records test accuracy at the best validation epoch
and training seconds per epoch. Configs whose dataset is missing from
``--root`` are skipped with a message (nothing is downloaded). Every run (a
config, a mode, a seed) is appended to the JSONL file beside the table as
soon as it ends, so runs can be split across sessions (``--skip-done``); the
table is rebuilt from all of them. ``--curves`` also records the validation
and test accuracy after every epoch, into ``results/small_curves.jsonl``
with a table of best and last-epoch accuracies.

    python benchmark/small/run.py --root data --seeds 5
    python benchmark/small/run.py --root data --configs gcn_cora gat_cora
"""
import argparse
import json
import logging
import os.path as osp
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch

from torch_autoscale.partition import PARTITION_METHODS

# benchmark/, for the helpers all benchmarks share; training.py is beside.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import bench_util  # noqa: E402
import training  # noqa: E402

log = logging.getLogger('small')
MODES = (('gas', 'GAS'), ('full', 'full-batch'))
#: What makes runs of a config comparable: rows of the table, and the runs a
#: command redoes.
SETTING = ('epochs', 'device', 'partition', 'history_dtype', 'warm_up',
           'partition_seed', 'overrides')
DEFAULTS = dict(partition='metis', history_dtype='float32', device='cpu',
                warm_up=True, partition_seed=False, overrides='')


def setting(r: Dict[str, Any]) -> Tuple:
    return (r['config'], ) + tuple(r.get(k, DEFAULTS.get(k))
                                   for k in SETTING)


def run_config(cfg, root, seeds, epochs, progress, jsonl: str, known: Dict,
               sparse_mode: str = 'auto', method: str = 'metis',
               modes: Tuple[str, ...] = ('gas', 'full'),
               device: torch.device = torch.device('cpu'),
               pool_size: Optional[int] = None, curves: bool = False,
               skip_done: bool = False, warm_up: bool = True,
               partition_seed: bool = False,
               overrides: str = '') -> List[Dict[str, Any]]:
    r"""Trains every mode and seed of :obj:`cfg`, GAS and full-batch of a
    seed side by side, and appends every run to :obj:`jsonl` as it ends.
    With :obj:`skip_done`, runs already there are kept and not redone
    (with :obj:`curves`, only runs that have curves); without, the runs of
    the same setting are replaced. With :obj:`curves`, every run also keeps
    its training loss and validation and test accuracy per epoch
    (:obj:`loss_curve`, :obj:`val_curve`, :obj:`test_curve`). Without
    :obj:`warm_up`, GAS starts from empty histories (see
    :func:`training.train`); with :obj:`partition_seed`, METIS' clusters
    vary with the seed (see :func:`training.prepare`). :obj:`overrides`
    names the config values :obj:`cfg` holds away from its file (a
    setting of its own)."""
    base = dict(config=cfg['name'], model=cfg['model'],
                dataset=cfg['dataset'], epochs=epochs,
                device=training.device_name(device), partition=method,
                history_dtype=cfg.get('history_dtype', 'float32'),
                warm_up=warm_up, partition_seed=partition_seed,
                overrides=overrides, threads=torch.get_num_threads(),
                **known)
    key = setting(base)

    def done(r: Dict[str, Any]) -> bool:
        return (skip_done and setting(r) == key and
                ('val_curve' in r or not curves))

    # Runs of this setting not kept are redone: drop them.
    records = bench_util.drop_jsonl(
        jsonl, lambda r: setting(r) == key and not done(r))
    finished = {(r['mode'], r['seed']) for r in records if done(r)}
    new = []
    for seed in seeds:
        todo = [(mode, mode == 'gas') for mode, _ in MODES
                if mode in modes and (mode, seed) not in finished]
        if not todo:
            continue
        data, ptr, num_classes = training.prepare(
            cfg, root, seed, sparse_mode, method, partition_seed)
        features = ('sparse' if data.x.layout == torch.sparse_csr
                    else 'dense')
        # Side by side: GAS and full-batch of the same seed, one after the
        # other in this process.
        for mode, gas in todo:
            record: Optional[Dict[str, List[float]]] = (
                {} if curves else None)
            val, test, sec = training.train(cfg, data, ptr, num_classes,
                                            seed, gas, epochs, progress,
                                            device, pool_size, record,
                                            warm_up)
            run = dict(base, mode=mode, seed=seed, val=val, test=test,
                       sec=sec, features=features, **(record or {}))
            bench_util.append_jsonl(jsonl, run)
            new.append(run)
            log.info('%s %s seed %d: val %.4f test %.4f %.4f s/epoch',
                     cfg['name'], mode, seed, val, test, sec)
    return new


def rows_by_setting(records: Iterable[Dict[str, Any]]):
    r"""The records of every table row, rows sorted by config."""
    rows: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in records:
        rows.setdefault(setting(r) + (r.get('features', 'dense'), ),
                        []).append(r)
    return [rows[k] for k in sorted(rows, key=lambda k: tuple(map(str, k)))]


def extra_columns(records: List[Dict[str, Any]]) -> List[str]:
    r"""The settings some record has away from its default: columns."""
    return [k for k in ('partition', 'history_dtype', 'warm_up',
                        'partition_seed', 'overrides')
            if any(r.get(k, DEFAULTS[k]) != DEFAULTS[k] for r in records)]


def cell(values: List[float], scale: float = 100.0, digits: int = 2) -> str:
    mean, std = bench_util.mean_std(values)
    return f'{scale * mean:.{digits}f} ± {scale * std:.{digits}f}'


def paired_cells(gas: List[Dict[str, Any]],
                 full: List[Dict[str, Any]]) -> Tuple[str, str]:
    r"""The per-seed GAS - full-batch test difference over the seeds both
    ran: mean ± standard error, and the lowest with its seed."""
    g = {r['seed']: r['test'] for r in gas}
    f = {r['seed']: r['test'] for r in full}
    seeds = sorted(set(g) & set(f))
    if not seeds:
        return '–', '–'
    diffs = [100 * (g[s] - f[s]) for s in seeds]
    mean, std = bench_util.mean_std(diffs)
    worst = min(range(len(seeds)), key=lambda i: diffs[i])
    return (f'{mean:+.2f} ± {std / len(diffs) ** 0.5:.2f}',
            f'{diffs[worst]:+.2f} (seed {seeds[worst]})')


def short_commits(rs: List[Dict[str, Any]]) -> str:
    return ', '.join(sorted({str(r.get('commit', 'unknown'))[:7]
                             for r in rs}))


def write_table(jsonl: str, table_path: str) -> str:
    r"""The table of GAS against full-batch training from the runs in
    :obj:`jsonl`: one row per config and setting."""
    records = bench_util.read_jsonl(jsonl)
    extra = extra_columns(records)
    rows = []
    for rs in rows_by_setting(records):
        first = rs[0]
        by = {mode: [r for r in rs if r['mode'] == mode]
              for mode, _ in MODES}
        cells = {}
        for mode, _ in MODES:
            if by[mode]:
                cells[mode] = (cell([r['test'] for r in by[mode]]),
                               bench_util.mean_std(r['sec']
                                                   for r in by[mode])[0])
        acc = [cells[m][0] if m in cells else '–' for m, _ in MODES]
        sec = [f'{cells[m][1]:.4f}' if m in cells else '–'
               for m, _ in MODES]
        diff = worst = ratio = '–'
        if len(cells) == 2:
            diff, worst = paired_cells(by['gas'], by['full'])
            ratio = f"{cells['gas'][1] / cells['full'][1]:.2f}"
        rows.append(
            [first['model'], first['dataset']] +
            [first.get(k, DEFAULTS[k]) for k in extra] +
            [len({r['seed'] for r in rs}), first['epochs'], *acc, diff,
             worst, *sec, ratio, first.get('features', 'dense'),
             first.get('device', 'cpu'), bench_util.values(rs, 'threads'),
             short_commits(rs)])
    header = (['model', 'dataset'] + [k.replace('_', ' ') for k in extra] +
              ['seeds', 'epochs', 'GAS test', 'full-batch test',
               'GAS − full (paired, ± s.e.)', 'worst seed: GAS − full',
               'GAS s/epoch', 'full s/epoch',
               'GAS / full time', 'features', 'device', 'threads',
               'commit'])
    body = [
        f"torch {bench_util.values(records, 'torch')}. Test accuracy (%) "
        'at the epoch of best validation accuracy, mean ± std over seeds; '
        'GAS − full: the per-seed difference over the seeds both ran, mean '
        '± its standard error, and the seed where GAS fell furthest below '
        'full-batch; training seconds per epoch (evaluation excluded, '
        'first epoch excluded), mean over seeds. GAS and full-batch of a '
        'seed ran side by side in one process; `–`: not run.', ''
    ] + bench_util.markdown_table(header, rows)
    return bench_util.write_markdown(
        table_path, 'GAS small benchmark: GAS against full-batch training',
        bench_util.commands(records), body)


def write_curves_table(jsonl: str, table_path: str) -> str:
    r"""The table of a :obj:`--curves` run: per config and mode, the best
    validation accuracy, the test accuracy at its epoch, that epoch, and the
    validation and test accuracy after the last epoch, from the runs with
    curves in :obj:`jsonl` (the per-epoch curves themselves stay there)."""
    records = [r for r in bench_util.read_jsonl(jsonl) if 'val_curve' in r]
    extra = extra_columns(records)
    rows = []
    for rs in rows_by_setting(records):
        for mode, name in MODES:
            runs = [r for r in rs if r['mode'] == mode]
            if not runs:
                continue
            first = runs[0]
            best_epoch = [1 + r['val_curve'].index(max(r['val_curve']))
                          for r in runs]
            losses = [r['loss_curve'][-1] for r in runs
                      if 'loss_curve' in r]
            rows.append([
                first['model'], first['dataset']] +
                [first.get(k, DEFAULTS[k]) for k in extra] + [
                name, len(runs),
                first['epochs'], cell([r['val'] for r in runs]),
                cell([r['test'] for r in runs]),
                cell(best_epoch, 1.0, 1),
                cell([r['val_curve'][-1] for r in runs]),
                cell([r['test_curve'][-1] for r in runs]),
                cell(losses, 1.0, 3) if len(losses) == len(runs) else '–',
                first.get('device', 'cpu'),
                bench_util.values(runs, 'threads'), short_commits(runs)
            ])
    header = (['model', 'dataset'] + [k.replace('_', ' ') for k in extra] +
              ['mode', 'seeds', 'epochs', 'best val', 'test at best val',
               'epoch of best val', 'last-epoch val', 'last-epoch test',
               'last-epoch training loss', 'device', 'threads', 'commit'])
    body = [
        f"torch {bench_util.values(records, 'torch')}. Accuracy (%), "
        'mean ± std over seeds; GAS and full-batch of a seed ran side by '
        'side in one process. The training loss of every epoch and the '
        'validation and test accuracy after it are in the JSONL file '
        '(`loss_curve`, `val_curve`, `test_curve`; `–`: not recorded).',
        ''
    ] + bench_util.markdown_table(header, rows)
    return bench_util.write_markdown(
        table_path,
        'GAS small benchmark: accuracy per epoch, GAS against full-batch',
        bench_util.commands(records), body)


def parse_overrides(parser, items: List[str]) -> Dict[str, Any]:
    r"""The config changes of :obj:`--set KEY=VALUE ...`, JSON values."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            parser.error(f"'--set' takes KEY=VALUE items (got {item!r})")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"'--set {item}': the value must be JSON, e.g. "
                         f"24, 0.5, null or '\"text\"'")
    return out


def apply_overrides(cfg: Dict[str, Any],
                    changes: Dict[str, Any]) -> Dict[str, Any]:
    r""":obj:`cfg` with :obj:`changes` (a :obj:`None` value removes the
    key)."""
    cfg = dict(cfg)
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def main(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--configs', nargs='*', default=None,
                        help='config names (default: all)')
    parser.add_argument('--seeds', type=int, default=5,
                        help='train seeds 0 to SEEDS - 1 (default: 5)')
    parser.add_argument('--first-seed', type=int, default=0,
                        help='start at this seed instead, e.g. to share the '
                        'seeds of a config among processes (default: 0)')
    parser.add_argument('--epochs', type=int, default=None,
                        help='override every config (smoke runs only)')
    parser.add_argument('--curves', action='store_true',
                        help='also record validation and test accuracy '
                        'after every epoch, and write a table of best and '
                        'last-epoch accuracies instead (default --out: '
                        'benchmark/results/small_curves.md)')
    parser.add_argument('--sparse-features', default='auto',
                        choices=['auto', 'always', 'never'],
                        help='hand node features over as a sparse CSR '
                        'matrix (auto: when at most 10%% are non-zero)')
    parser.add_argument('--threads', type=int, default=None,
                        help='intra-op threads (default: PyTorch\'s)')
    parser.add_argument('--partition', default='metis',
                        choices=PARTITION_METHODS,
                        help='how GAS clusters the graph (default: metis, '
                        'as in the reference code)')
    parser.add_argument('--modes', nargs='+', default=['gas', 'full'],
                        choices=['gas', 'full'],
                        help='which of GAS and full-batch to train')
    parser.add_argument('--history-dtype', default='float32',
                        choices=['float32', 'float16', 'bfloat16'],
                        help='storage dtype of the GAS histories')
    parser.add_argument('--device', default='cpu',
                        help='where both models train, e.g. cuda; GAS '
                        'histories stay in host memory (default: cpu)')
    parser.add_argument('--pool-size', type=int, default=None,
                        help='concurrent asynchronous history transfers of '
                        'GAS on a GPU (default: 2 on a GPU, none on the CPU)')
    parser.add_argument('--no-warm-up', dest='warm_up',
                        action='store_false',
                        help='start GAS from empty histories instead of '
                        'filling them by layer-wise inference before the '
                        'first epoch (the reference code does)')
    parser.add_argument('--partition-seed', action='store_true',
                        help="hand every seed to METIS, so that clusters "
                        "vary with it (default: METIS' fixed seed, the "
                        "same clusters for every seed, as in the reference "
                        "code)")
    parser.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE',
                        help='change config values, JSON values (e.g. '
                        '"num_parts=24 batch_size=8 grad_clip=null"; '
                        'null removes a key); a setting of its own')
    parser.add_argument('--quiet', action='store_true')
    bench_util.add_output_options(parser, 'small')
    parser.set_defaults(out=None)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = osp.join(bench_util.RESULTS, 'small_curves.md'
                            if args.curves else 'small.md')
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.sparse.check_sparse_tensor_invariants.disable()
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f"'--device {args.device}' needs a GPU, but CUDA is not "
                     f"available; leave '--device' out to run on the CPU")
    pool_size = args.pool_size
    if pool_size is None and device.type == 'cuda':
        pool_size = 2
    if pool_size is not None and device.type != 'cuda':
        parser.error("'--pool-size' needs '--device cuda' (asynchronous "
                     "history transfers run on CUDA streams)")
    if not 0 <= args.first_seed < args.seeds:
        parser.error(f"'--first-seed' must be at least 0 and below '--seeds' "
                     f"({args.seeds}), got {args.first_seed}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    names = training.config_names()
    if args.configs:
        unknown = set(args.configs) - set(names)
        if unknown:
            parser.error(f'unknown configs: {sorted(unknown)}')
        names = [n for n in names if n in args.configs]
    changes = parse_overrides(parser, args.set)
    overrides = ' '.join(f'{k}={json.dumps(v)}'
                         for k, v in sorted(changes.items()))
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        known = dict(command=bench_util.command_line(__file__, argv),
                     **bench_util.provenance())
        for name in names:
            cfg = training.load_config(name)
            if not training.available(args.root, cfg['dataset']):
                log.warning('skipping %s: dataset %s not found under %s',
                            name, cfg['dataset'], args.root)
                continue
            if args.history_dtype != 'float32':
                cfg = dict(cfg, history_dtype=args.history_dtype,
                           model_kwargs=dict(
                               cfg['model_kwargs'], history_dtype=getattr(
                                   torch, args.history_dtype)))
            cfg = apply_overrides(cfg, changes)
            seeds = list(range(args.first_seed, args.seeds))
            run_config(cfg, args.root, seeds,
                       args.epochs or cfg['epochs'], not args.quiet, jsonl,
                       known, args.sparse_features, args.partition,
                       tuple(args.modes), device, pool_size, args.curves,
                       args.skip_done, args.warm_up, args.partition_seed,
                       overrides)

    if args.curves:
        print(write_curves_table(jsonl, args.out))
    else:
        print(write_table(jsonl, args.out))


if __name__ == '__main__':
    main()
