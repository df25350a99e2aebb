r"""Where a GAS epoch's time goes, against full-batch training: history
access on one side, computing on mini-batches plus their halo on the other.

For every config, one process trains three copies of the model (same
initialization) epoch by epoch in turn, the order rotating, so that drift of
a shared machine hits all three alike:

* ``full``: full-batch training;
* ``GAS``: GAS, as in ``run.py`` (METIS clusters, histories);
* ``no history``: the same mini-batches and halo, but :meth:`push_and_pull`
  neither pushes nor pulls: the halo rows of every layer are zeros. The
  arithmetic is GAS's, the history access is gone.

``GAS / no history`` is then what history access costs, the GAS paper's
claim (it "adds almost nothing"); ``no history / full`` is what training on
mini-batches costs, mostly the halo: every mini-batch also runs its first
layer (dropout, linear transform) for its halo nodes, ``rows / epoch``
times the graph's nodes per epoch in all.

    python benchmark/small/overhead.py --root data --epochs 20
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import datasets  # noqa: E402
import run  # noqa: E402

from torch_autoscale.loader import (  # noqa: E402
    EvalSubgraphLoader,
    SubgraphLoader,
)

log = logging.getLogger('small.overhead')
MODES = ('full', 'gas', 'no_history')
LABELS = {'full': 'full', 'gas': 'GAS', 'no_history': 'no history'}
DEFAULT_CONFIGS = [f'{m}_{d}' for d in ('amazon_computers', 'coauthor_cs')
                   for m in ('gcn', 'gat', 'appnp', 'gcnii')]


def _zeros_for_halo(history, x, batch=None):
    r"""A :meth:`push_and_pull` without history access: the in-batch rows
    followed by zeros for the halo."""
    if batch is None:
        return x
    h = x[:batch.batch_size]
    halo = h.new_zeros(batch.n_id.numel() - batch.batch_size, h.size(1))
    return torch.cat([h, halo], dim=0)


def without_history_access(model):
    r"""Makes :obj:`model` skip its histories: nothing is pushed, the halo of
    every layer gets zeros."""
    model.push_and_pull = _zeros_for_halo
    return model


class Trainer:
    r"""One model and its optimizer, trained epoch by epoch in one mode."""
    def __init__(self, mode: str, cfg: Dict[str, Any], data, ptr,
                 num_classes: int, seed: int):
        self.mode, self.cfg, self.data = mode, cfg, data
        torch.manual_seed(seed)
        self.model = run.make_model(cfg, data, num_classes)
        groups = self.model.param_groups(cfg['weight_decay'],
                                         cfg.get('nonreg_weight_decay', 0.0))
        self.optimizer = torch.optim.Adam(groups, lr=cfg['lr'])
        self.loader: Optional[SubgraphLoader] = None
        self.rows: List[int] = []  # Nodes of every mini-batch with halo.
        if mode != 'full':
            self.loader = SubgraphLoader(data, ptr,
                                         batch_size=cfg['batch_size'],
                                         shuffle=True)
            # Fill the histories, as run.py does before training.
            self.model.mini_inference(
                EvalSubgraphLoader(data, ptr, batch_size=cfg['batch_size']),
                progress=False)
        if mode == 'no_history':
            without_history_access(self.model)

    def epoch(self) -> float:
        r"""Trains one epoch and returns its seconds."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        model.train()
        start = time.perf_counter()
        if self.loader is None:
            optimizer.zero_grad()
            out = model(self.data.x, self.data.adj_t)
            run.step(model, optimizer, out, self.data.y,
                     self.data.train_mask, cfg.get('grad_clip'))
        else:
            for batch in self.loader:
                self.rows.append(int(batch.n_id.numel()))
                optimizer.zero_grad()
                out = model(batch.data.x, batch.data.adj_t, batch)
                bs = batch.batch_size
                mask = batch.data.train_mask[:bs]
                if bool(mask.any()):
                    run.step(model, optimizer, out[:bs], batch.data.y[:bs],
                             mask, cfg.get('grad_clip'))
        return time.perf_counter() - start


def measure(cfg: Dict[str, Any], data, ptr, num_classes: int, epochs: int,
            warmup: int = 2, seed: int = 0) -> Dict[str, Any]:
    r"""Trains the three modes for :obj:`warmup` + :obj:`epochs` epochs,
    interleaved, and returns the seconds of every timed epoch per mode and
    the nodes whose first layer a GAS epoch computes (in-batch plus halo,
    over the graph's nodes; the clusters of a mini-batch are drawn at
    random every epoch)."""
    trainers = {mode: Trainer(mode, cfg, data, ptr, num_classes, seed)
                for mode in MODES}
    seconds: Dict[str, List[float]] = {mode: [] for mode in MODES}
    for epoch in range(warmup + epochs):
        shift = epoch % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            trainer = trainers[mode]
            sec = trainer.epoch()
            if epoch >= warmup:
                seconds[trainer.mode].append(sec)
    return dict(config=cfg['name'], model=cfg['model'],
                dataset=cfg['dataset'], epochs=epochs, seconds=seconds,
                rows_per_epoch=sum(trainers['gas'].rows) /
                (data.num_nodes * (warmup + epochs)))


def table(results: List[Dict[str, Any]], command: str,
          threads: int) -> str:
    r"""The Markdown table of :obj:`results`: median seconds per epoch of
    every mode and their ratios."""
    lines = [
        '# GAS small benchmark: where a GAS epoch\'s time goes', '',
        'Produced by (from the repository root, datasets unpacked into '
        '`data/`):', '', '```bash', command, '```', '',
        f'torch {torch.__version__}, CPU, {threads} intra-op thread(s). '
        'Training seconds per epoch, median over the timed epochs (after '
        'two warm-up epochs); the three modes of a row ran in one process, '
        'epoch by epoch in turn. `no history`: GAS\'s mini-batches with '
        'history access removed (nothing pushed, zeros for the halo). '
        '`rows / epoch`: nodes whose first layer a GAS epoch computes '
        '(in-batch plus halo), over the graph\'s nodes.', '',
        '| model | dataset | epochs | full s | GAS s | no history s | '
        'GAS / full | GAS / no history | no history / full | '
        'rows / epoch |',
        '|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        med = {m: statistics.median(r['seconds'][m]) for m in MODES}
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['epochs']} | "
            f"{med['full']:.4f} | {med['gas']:.4f} | "
            f"{med['no_history']:.4f} | {med['gas'] / med['full']:.2f} | "
            f"{med['gas'] / med['no_history']:.2f} | "
            f"{med['no_history'] / med['full']:.2f} | "
            f"{r['rows_per_epoch']:.2f} |")
    return '\n'.join(lines) + '\n'


def cli(script: str, doc: str, default_configs: List[str], out_name: str,
        measure_fn: Callable, table_fn: Callable) -> None:
    r"""The command line of a side-by-side CPU timing script over small
    benchmark configs (this one and ``transpose.py``): runs
    :obj:`measure_fn` on every config whose dataset is present and writes
    :obj:`table_fn`'s table and the JSON results."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--configs', nargs='+', default=default_configs)
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=osp.join(
        run.ROOT, 'benchmark', 'results', out_name))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.set_num_threads(args.threads)
    torch.sparse.check_sparse_tensor_invariants.disable()

    results = []
    for name in args.configs:
        cfg = run.load_config(name)
        if not datasets.available(args.root, cfg['dataset']):
            log.info(f"skipping '{name}': dataset '{cfg['dataset']}' not "
                     f"found under '{args.root}'")
            continue
        data, ptr, num_classes = run.prepare(cfg, args.root, seed=0)
        results.append(measure_fn(cfg, data, ptr, num_classes, args.epochs))
        log.info(json.dumps({k: v for k, v in results[-1].items()
                             if k != 'seconds'}))
    # Allocator settings change CPU timings (see benchmark/cpu_malloc.py):
    # part of the command.
    env = ''.join(f'{k}={v} ' for k, v in sorted(os.environ.items())
                  if k.startswith('MALLOC_'))
    command = (env + f'python benchmark/small/{osp.basename(script)} ' +
               ' '.join(sys.argv[1:]))
    text = table_fn(results, command, args.threads)
    with open(args.out, 'w') as f:
        f.write(text)
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(results, f, indent=1)
    print(text)


def main():
    cli(__file__, __doc__, DEFAULT_CONFIGS, 'small_overhead.md', measure,
        table)


if __name__ == '__main__':
    main()
