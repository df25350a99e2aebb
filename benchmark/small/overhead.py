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
import os.path as osp
import statistics
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch

# benchmark/, for the helpers all benchmarks share; training.py is beside.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import bench_util  # noqa: E402
import training  # noqa: E402

MODES = ('full', 'gas', 'no_history')
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


def trainer(mode: str, cfg: Dict[str, Any], data, ptr, num_classes: int,
            seed: int) -> training.Trainer:
    r"""A trainer of :obj:`mode`: :obj:`"full"`, :obj:`"gas"` or
    :obj:`"no_history"` (GAS without history access)."""
    out = training.Trainer(mode, cfg, data, ptr, num_classes, seed)
    if mode == 'no_history':
        without_history_access(out.model)
    return out


def measure(cfg: Dict[str, Any], data, ptr, num_classes: int, epochs: int,
            warmup: int = 2, seed: int = 0) -> Dict[str, Any]:
    r"""Trains the three modes for :obj:`warmup` + :obj:`epochs` epochs,
    interleaved, and returns the seconds of every timed epoch per mode and
    the nodes whose first layer a GAS epoch computes (in-batch plus halo,
    over the graph's nodes; the clusters of a mini-batch are drawn at
    random every epoch)."""
    trainers = {mode: trainer(mode, cfg, data, ptr, num_classes, seed)
                for mode in MODES}
    seconds: Dict[str, List[float]] = {mode: [] for mode in MODES}
    for epoch in range(warmup + epochs):
        shift = epoch % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            sec = trainers[mode].epoch()
            if epoch >= warmup:
                seconds[mode].append(sec)
    return dict(config=cfg['name'], model=cfg['model'],
                dataset=cfg['dataset'], epochs=epochs, seconds=seconds,
                rows_per_epoch=sum(trainers['gas'].rows) /
                (data.num_nodes * (warmup + epochs)))


def table(results: List[Dict[str, Any]]) -> Tuple[str, List[str]]:
    r"""The title and body of the table of :obj:`results`: median seconds
    per epoch of every mode and their ratios."""
    rows = []
    for r in results:
        med = {m: statistics.median(r['seconds'][m]) for m in MODES}
        rows.append([
            r['model'], r['dataset'], r['epochs'], f"{med['full']:.4f}",
            f"{med['gas']:.4f}", f"{med['no_history']:.4f}",
            f"{med['gas'] / med['full']:.2f}",
            f"{med['gas'] / med['no_history']:.2f}",
            f"{med['no_history'] / med['full']:.2f}",
            f"{r['rows_per_epoch']:.2f}"])
    body = [
        f"torch {bench_util.values(results, 'torch')}, CPU, "
        f"{bench_util.values(results, 'threads')} intra-op thread(s). "
        'Training seconds per epoch, median over the timed epochs (after '
        'two warm-up epochs); the three modes of a row ran in one process, '
        'epoch by epoch in turn. `no history`: GAS\'s mini-batches with '
        'history access removed (nothing pushed, zeros for the halo). '
        '`rows / epoch`: nodes whose first layer a GAS epoch computes '
        '(in-batch plus halo), over the graph\'s nodes.', ''
    ] + bench_util.markdown_table(
        ['model', 'dataset', 'epochs', 'full s', 'GAS s', 'no history s',
         'GAS / full', 'GAS / no history', 'no history / full',
         'rows / epoch'], rows)
    return 'GAS small benchmark: where a GAS epoch\'s time goes', body


def main(argv: Optional[List[str]] = None) -> str:
    return training.timing_main(__file__, __doc__, 'small_overhead',
                                DEFAULT_CONFIGS, measure, table, argv)


if __name__ == '__main__':
    main()
