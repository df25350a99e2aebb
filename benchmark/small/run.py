r"""The GNNAutoScale small benchmark: GAS against full-batch training.

For every config in ``benchmark/small/configs/`` (one per model and dataset,
holding the reference hyperparameters of the GAS paper's code), this trains
the model with GAS (METIS clusters, histories, layer-wise inference for
evaluation) and the same architecture full-batch, seed after seed, side by
side in one process, and records test accuracy at the best validation epoch
and training seconds per epoch. Datasets missing from ``--root`` are skipped
with a message (nothing is downloaded). Results go to one JSON file per config
under ``--out-dir``; the Markdown table is rebuilt from all of them, so runs
can be split across sessions (``--skip-done``). ``--curves`` also records
the validation and test accuracy after every epoch, into
``results/small_curves/`` and a table of best and last-epoch accuracies.

    python benchmark/small/run.py --root data --seeds 5
    python benchmark/small/run.py --root data --configs gcn_cora gat_cora
"""
import argparse
import glob
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_remaining_self_loops, remove_self_loops
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import datasets  # noqa: E402

import torch_autoscale.nn.models as models  # noqa: E402
from torch_autoscale.loader import (  # noqa: E402
    EvalSubgraphLoader,
    SubgraphLoader,
)
from torch_autoscale.partition import (  # noqa: E402
    PARTITION_METHODS,
    partition,
    permute,
    sort_by_cluster,
)
from torch_autoscale.utils import (  # noqa: E402
    csr_adj_t,
    sparsify_features,
)

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
log = logging.getLogger('small')


def prepare_adj(data, kind: str):
    r"""The full-graph adjacency the model expects: ``gcn_norm`` (symmetric
    normalization with self-loops, computed before partitioning so every
    batch sees full-graph degrees), ``self_loops`` or ``raw``."""
    edge_index, _ = remove_self_loops(data.edge_index)
    if kind == 'gcn_norm':
        adj_t, _ = gcn_norm(csr_adj_t(edge_index, data.num_nodes))
        return adj_t
    if kind == 'self_loops':
        edge_index, _ = add_remaining_self_loops(edge_index,
                                                 num_nodes=data.num_nodes)
    elif kind != 'raw':
        raise ValueError(f"unknown adjacency kind '{kind}'")
    return csr_adj_t(edge_index, data.num_nodes)


def load_config(name: str) -> Dict[str, Any]:
    r"""The config :obj:`configs/{name}.json`, with its :obj:`name`."""
    with open(osp.join(HERE, 'configs', f'{name}.json')) as f:
        return dict(json.load(f), name=name)


def make_model(cfg: Dict[str, Any], data, num_classes: int, **extra: Any):
    r"""The config's model; :obj:`extra` are further arguments of
    :class:`~torch_autoscale.nn.ScalableGNN` (*e.g.*, :obj:`pool_size`)."""
    cls = getattr(models, cfg['model'])
    kwargs = dict(cfg['model_kwargs'], **extra)
    if cfg['model'] in ('PNA', 'PNA_JK'):
        kwargs['deg'] = cls.degree_histogram(data.adj_t, data.num_nodes)
    return cls(num_nodes=data.num_nodes, in_channels=data.num_features,
               out_channels=num_classes, **kwargs)


def accuracy(out, y, mask) -> float:
    return float((out[mask].argmax(-1) == y[mask]).float().mean())


def step(model, optimizer, out, y, mask, grad_clip):
    loss = F.cross_entropy(out[mask], y[mask]) + model.reg_loss
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def train(cfg, data, ptr, num_classes, seed: int, gas: bool,
          epochs: int, progress: bool,
          device: torch.device = torch.device('cpu'),
          pool_size: Optional[int] = None,
          record: Optional[Dict[str, List[float]]] = None,
          ) -> Tuple[float, float, float]:
    r"""Trains one model, GAS or full-batch, on :obj:`device` and returns
    the best validation accuracy, the test accuracy at that epoch and the
    mean training seconds per epoch. GAS keeps its histories in host memory;
    with :obj:`pool_size` (a GPU only) their transfers run asynchronously
    through the model's :class:`~torch_autoscale.history.AsyncIOPool`.
    With :obj:`record`, the validation and test accuracy after every epoch
    are appended to its lists :obj:`"val_curve"` and :obj:`"test_curve"`."""
    torch.manual_seed(seed)
    extra: Dict[str, Any] = {}
    if gas:
        loader = SubgraphLoader(data, ptr, batch_size=cfg['batch_size'],
                                shuffle=True)
        eval_loader = EvalSubgraphLoader(data, ptr,
                                         batch_size=cfg['batch_size'])
        if pool_size is not None:
            extra = dict(pool_size=pool_size, buffer_size=max(
                loader.required_buffer_size(),
                eval_loader.required_buffer_size()))
    else:
        full = data.to(device)
    model = make_model(cfg, data, num_classes, **extra).to(device)
    groups = model.param_groups(cfg['weight_decay'],
                                cfg.get('nonreg_weight_decay', 0.0))
    optimizer = torch.optim.Adam(groups, lr=cfg['lr'])
    clip = cfg.get('grad_clip')
    if gas:
        model.mini_inference(eval_loader, progress=False)

    best_val, test_acc, times = -1.0, 0.0, []
    name = 'GAS' if gas else 'full'
    for _ in tqdm(range(epochs), desc=f"{cfg['name']} {name} seed {seed}",
                  disable=not progress, leave=False):
        model.train()
        synchronize(device)
        start = time.perf_counter()
        if gas:
            for batch in loader:
                batch = batch.to(device, non_blocking=True)
                optimizer.zero_grad()
                out = model(batch.data.x, batch.data.adj_t, batch)
                bs = batch.batch_size
                mask = batch.data.train_mask[:bs]
                if bool(mask.any()):
                    step(model, optimizer, out[:bs], batch.data.y[:bs], mask,
                         clip)
        else:
            optimizer.zero_grad()
            out = model(full.x, full.adj_t)
            step(model, optimizer, out, full.y, full.train_mask, clip)
        synchronize(device)
        times.append(time.perf_counter() - start)

        with torch.no_grad():
            if gas:
                out = model.mini_inference(eval_loader, progress=False)
            else:
                out = model.eval()(full.x, full.adj_t).cpu()
        val_acc = accuracy(out, data.y, data.val_mask)
        if record is not None:
            # Accuracies are multiples of 1 / (mask size): 6 digits keep
            # them exact enough and the JSON small.
            record.setdefault('val_curve', []).append(round(val_acc, 6))
            record.setdefault('test_curve', []).append(
                round(accuracy(out, data.y, data.test_mask), 6))
        if val_acc > best_val:
            best_val = val_acc
            test_acc = accuracy(out, data.y, data.test_mask)
    # The first epoch includes one-off warm-up; report the rest.
    sec = statistics.mean(times[1:]) if len(times) > 1 else times[0]
    return best_val, test_acc, sec


def git_commit() -> str:
    r"""The commit of the code that produced a result (or :obj:`"unknown"`
    outside a git checkout)."""
    import subprocess
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def prepare_features(x, mode: str):
    r"""The node features handed to the models: as a sparse CSR matrix
    always, never, or (:obj:`"auto"`) when at most 10% of them are non-zero,
    as for bag-of-words features. Dropout and the first linear layer then
    cost time in proportion to the non-zeros, in GAS and full-batch alike."""
    if mode == 'auto':
        return sparsify_features(x)
    return x.to_sparse_csr() if mode == 'always' else x


def use_sparse_features(x, mode: str) -> bool:
    r"""Whether :func:`prepare_features` makes :obj:`x` sparse."""
    return prepare_features(x, mode).layout == torch.sparse_csr


def prepare(cfg: Dict[str, Any], root: str, seed: int,
            sparse_mode: str = 'auto', method: str = 'metis'):
    r"""Loads the config's dataset (split by :obj:`seed`), builds its
    adjacency, clusters it and lays every cluster out contiguously.

    Returns:
        The permuted graph, the cluster boundaries and the number of
        classes.
    """
    data = datasets.load(root, cfg['dataset'], seed)
    num_classes = int(data.y.max()) + 1
    data.adj_t = prepare_adj(data, cfg.get('adj', 'raw'))
    cluster = partition(data.edge_index, cfg['num_parts'], method=method,
                        num_nodes=data.num_nodes, seed=seed)
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    data = permute(data, perm)
    data.x = prepare_features(data.x, sparse_mode)
    return data, ptr, num_classes


def run_config(cfg, root, seeds, epochs, progress, out: str, command: str,
               sparse_mode: str = 'auto', method: str = 'metis',
               modes: Tuple[str, ...] = ('gas', 'full'),
               device: torch.device = torch.device('cpu'),
               pool_size: Optional[int] = None,
               curves: bool = False) -> Dict[str, Any]:
    r"""Runs every seed not yet in :obj:`out` and saves after each one, so an
    interrupted run resumes where it stopped. With :obj:`curves`, every run
    also keeps its validation and test accuracy per epoch
    (:obj:`val_curve`, :obj:`test_curve`)."""
    result = dict(config=cfg['name'], model=cfg['model'],
                  dataset=cfg['dataset'], epochs=epochs, seeds=[], gas=[],
                  full=[], command=command,
                  threads=torch.get_num_threads(), commit=git_commit(),
                  partition=method, device=device_name(device),
                  history_dtype=cfg.get('history_dtype', 'float32'))
    if osp.exists(out):
        with open(out) as f:
            previous = json.load(f)
        # Seeds of another schedule or device are not comparable: redo.
        # So are runs without curves when curves are asked for.
        has_curves = all('val_curve' in r
                         for r in previous['gas'] + previous['full'])
        if (previous.get('epochs') == epochs and
                previous.get('device', 'cpu') == result['device'] and
                (has_curves or not curves)):
            result.update(gas=previous['gas'], full=previous['full'],
                          seeds=previous['seeds'],
                          features=previous.get('features', 'dense'))
    for seed in seeds:
        if seed in result['seeds']:
            continue
        data, ptr, num_classes = prepare(cfg, root, seed, sparse_mode,
                                         method)
        result['features'] = ('sparse' if data.x.layout == torch.sparse_csr
                              else 'dense')
        # Side by side: GAS and full-batch of the same seed, one after the
        # other in this process.
        for key, gas in (('gas', True), ('full', False)):
            if key not in modes:
                continue
            record: Optional[Dict[str, List[float]]] = (
                {} if curves else None)
            val, test, sec = train(cfg, data, ptr, num_classes, seed, gas,
                                   epochs, progress, device, pool_size,
                                   record)
            result[key].append(dict(seed=seed, val=val, test=test, sec=sec,
                                    **(record or {})))
            log.info('%s %s seed %d: val %.4f test %.4f %.4f s/epoch',
                     cfg['name'], key, seed, val, test, sec)
        result['seeds'].append(seed)
        with open(out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


def device_name(device: torch.device) -> str:
    r""":obj:`"cpu"`, or the name of the GPU."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return device.type


def summary(runs: List[Dict[str, float]], key: str) -> Tuple[float, float]:
    values = [r[key] for r in runs]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), std


def write_table(out_dir: str, table_path: str, root: str) -> str:
    rows, commands = [], []
    for path in sorted(glob.glob(osp.join(out_dir, '*.json'))):
        with open(path) as f:
            r = json.load(f)
        if r.get('command') and r['command'] not in commands:
            commands.append(r['command'])
        if not r['gas'] or not r['full']:  # One mode only (--modes).
            key = 'gas' if r['gas'] else 'full'
            acc, std = summary(r[key], 'test')
            sec, _ = summary(r[key], 'sec')
            cells = [f'{100 * acc:.2f} ± {100 * std:.2f}', '–', '–',
                     f'{sec:.4f}', '–', '–']
            if key == 'full':
                cells = ['–', cells[0], '–', '–', f'{sec:.4f}', '–']
        else:
            g_acc, g_std = summary(r['gas'], 'test')
            f_acc, f_std = summary(r['full'], 'test')
            g_sec, _ = summary(r['gas'], 'sec')
            f_sec, _ = summary(r['full'], 'sec')
            cells = [f'{100 * g_acc:.2f} ± {100 * g_std:.2f}',
                     f'{100 * f_acc:.2f} ± {100 * f_std:.2f}',
                     f'{100 * (g_acc - f_acc):+.2f}', f'{g_sec:.4f}',
                     f'{f_sec:.4f}', f'{g_sec / f_sec:.2f}']
        rows.append(
            f"| {r['model']} | {r['dataset']} | {len(r['seeds'])} | "
            f"{r['epochs']} | " + ' | '.join(cells) +
            f" | {r.get('features', 'dense')} | {r.get('device', 'cpu')} | "
            f"{r.get('threads', 2)} |")
    missing = [n for n in datasets.DATASETS if not datasets.available(root,
                                                                      n)]
    lines = [
        '# GAS small benchmark: GAS against full-batch training', '',
        'Produced by (from the repository root, datasets unpacked into '
        '`data/`):', '', '```bash'] + commands + ['```', '',
        f'torch {torch.__version__}; device and intra-op CPU threads of '
        'every row in the table. '
        'Test accuracy (%) at the epoch of best validation accuracy, mean ± '
        'std over seeds; training seconds per epoch (evaluation excluded, '
        'first epoch excluded), GAS and full-batch run side by side for '
        'every seed.', '',
        '| model | dataset | seeds | epochs | GAS test | full-batch test | '
        'GAS − full | GAS s/epoch | full s/epoch | GAS / full time | '
        'features | device | threads |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ] + rows
    if missing:
        lines += ['', 'Not available offline, skipped: ' +
                  ', '.join(missing) + '.']
    notes = osp.join(HERE, 'NOTES.md')
    if osp.exists(notes):
        with open(notes) as f:
            lines += ['', f.read().strip()]
    text = '\n'.join(lines) + '\n'
    with open(table_path, 'w') as f:
        f.write(text)
    return text


def write_curves_table(out_dir: str, table_path: str) -> str:
    r"""The table of a :obj:`--curves` run: per config and mode, the best
    validation accuracy, the test accuracy at its epoch, that epoch, and the
    validation and test accuracy after the last epoch, from the JSON files
    under :obj:`out_dir` (the per-epoch curves themselves stay there)."""
    rows, commands = [], []
    for path in sorted(glob.glob(osp.join(out_dir, '*.json'))):
        with open(path) as f:
            r = json.load(f)
        if r.get('command') and r['command'] not in commands:
            commands.append(r['command'])
        for key, name in (('gas', 'GAS'), ('full', 'full-batch')):
            runs = [s for s in r[key] if 'val_curve' in s]
            if not runs:
                continue

            def cell(values: List[float], scale: float = 100.0) -> str:
                mean = statistics.mean(values)
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                digits = 2 if scale == 100.0 else 1
                return (f'{scale * mean:.{digits}f} ± '
                        f'{scale * std:.{digits}f}')

            best_epoch = [1 + s['val_curve'].index(max(s['val_curve']))
                          for s in runs]
            rows.append(
                f"| {r['model']} | {r['dataset']} | {name} | {len(runs)} | "
                f"{r['epochs']} | {cell([s['val'] for s in runs])} | "
                f"{cell([s['test'] for s in runs])} | "
                f"{cell(best_epoch, 1.0)} | "
                f"{cell([s['val_curve'][-1] for s in runs])} | "
                f"{cell([s['test_curve'][-1] for s in runs])} | "
                f"{r.get('device', 'cpu')} | {r.get('threads', 2)} |")
    lines = [
        '# GAS small benchmark: accuracy per epoch, GAS against full-batch',
        '', 'Produced by (from the repository root, datasets unpacked into '
        '`data/`):', '', '```bash'] + commands + ['```', '',
        f'torch {torch.__version__}. Accuracy (%), mean ± std over seeds; '
        'GAS and full-batch of a seed run side by side in one process. '
        'Validation and test accuracy after every epoch are in the JSON '
        f'files under `{osp.relpath(out_dir, ROOT)}/` (`val_curve`, '
        '`test_curve`).', '',
        '| model | dataset | mode | seeds | epochs | best val | test at best '
        'val | epoch of best val | last-epoch val | last-epoch test | '
        'device | threads |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ] + rows
    text = '\n'.join(lines) + '\n'
    with open(table_path, 'w') as f:
        f.write(text)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--configs', nargs='*', default=None,
                        help='config names (default: all)')
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--epochs', type=int, default=None,
                        help='override every config (smoke runs only)')
    parser.add_argument('--out-dir', default=None,
                        help='per-config JSON results (default: '
                        'benchmark/results/small, with --curves '
                        'benchmark/results/small_curves)')
    parser.add_argument('--table', default=None,
                        help='the Markdown table (default: '
                        'benchmark/results/small.md, with --curves '
                        'benchmark/results/small_curves.md)')
    parser.add_argument('--curves', action='store_true',
                        help='also record validation and test accuracy '
                        'after every epoch, and write a table of best and '
                        'last-epoch accuracies instead')
    parser.add_argument('--skip-done', action='store_true',
                        help='keep finished seeds of earlier runs and run '
                        'only the missing ones')
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
    parser.add_argument('--quiet', action='store_true')
    parser.add_argument('--table-only', action='store_true',
                        help='rebuild the table from the JSON results only')
    args = parser.parse_args()
    results = osp.join(ROOT, 'benchmark', 'results')
    name = 'small_curves' if args.curves else 'small'
    if args.out_dir is None:
        args.out_dir = osp.join(results, name)
    if args.table is None:
        args.table = osp.join(results, f'{name}.md')
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
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    paths = sorted(glob.glob(osp.join(HERE, 'configs', '*.json')))
    configs = []
    for path in paths:
        cfg = load_config(osp.splitext(osp.basename(path))[0])
        if args.configs is None or cfg['name'] in args.configs:
            configs.append(cfg)
    if args.configs:
        unknown = set(args.configs) - {c['name'] for c in configs}
        if unknown:
            parser.error(f'unknown configs: {sorted(unknown)}')

    os.makedirs(args.out_dir, exist_ok=True)
    command = 'python benchmark/small/run.py ' + ' '.join(
        a for a in sys.argv[1:] if a != '--quiet')
    for cfg in [] if args.table_only else configs:
        out = osp.join(args.out_dir, f"{cfg['name']}.json")
        if not datasets.available(args.root, cfg['dataset']):
            log.warning('skipping %s: dataset %s not found under %s',
                        cfg['name'], cfg['dataset'], args.root)
            continue
        if not args.skip_done and osp.exists(out):
            os.remove(out)  # Start over; --skip-done resumes instead.
        epochs = args.epochs or cfg['epochs']
        if args.history_dtype != 'float32':
            cfg = dict(cfg, history_dtype=args.history_dtype,
                       model_kwargs=dict(
                           cfg['model_kwargs'],
                           history_dtype=getattr(torch, args.history_dtype)))
        run_config(cfg, args.root, list(range(args.seeds)), epochs,
                   not args.quiet, out, command, args.sparse_features,
                   args.partition, tuple(args.modes), device, pool_size,
                   args.curves)

    if args.curves:
        print(write_curves_table(args.out_dir, args.table))
    else:
        print(write_table(args.out_dir, args.table, args.root))


if __name__ == '__main__':
    main()
