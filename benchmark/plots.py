r"""Pictures of the committed benchmark results: small PNGs for the docs,
drawn from the JSONL results under ``benchmark/results/`` alone (nothing
is measured here).

    python benchmark/plots.py

writes ``docs/source/_static/plots/*.png`` (``--out`` elsewhere,
``--results`` to read another results folder, ``--only`` for some figures):

* ``gas_vs_full.png``: GAS against full-batch training on the small graphs
  (``small.jsonl``): test accuracy and seconds per training epoch, per model
  and dataset, mean and standard deviation over the seeds.
* ``gas_vs_full_curve.png``: training loss and validation accuracy per
  epoch of GAS and full-batch training of GCN on Cora, Amazon-Computers and
  Coauthor-CS (those recorded), with the reference protocol, mean and
  standard deviation over the seeds (``small_curves.jsonl``, from
  ``run.py --curves``).
* ``memory.png``: memory of a training step, peak anonymous host memory and
  seconds per epoch as the synthetic graph grows, full-batch against GAS
  with histories in host memory and on disk (``memory.jsonl``).
* ``partition.png``: seconds and peak memory of METIS, LPMetis and random
  partitions against the number of edges (``partition.jsonl``); runs that
  did not finish are marked at their recorded lower bound.
* ``gst.png``: Graph Segment Training variants on MalNet-Tiny
  (``gst.jsonl``): test accuracy, milliseconds per step side by side and
  step memory by graph size.
* ``gst_curve.png``: validation accuracy per epoch of full-graph training
  and GST+EFD over 120 epochs (``gst_e120.jsonl``).
* ``distributed_curve.png``: validation accuracy per epoch of GAS on Cora
  with one and two processes (``distributed.jsonl``).

``gas_vs_full.png`` shows every small config at the epoch of best
validation accuracy; per-epoch curves are committed for GCN on Cora only
(``gas_vs_full_curve.png``). Needs matplotlib (``pip install matplotlib`` or
the ``plot`` extra).
"""
import argparse
import math
import os
import os.path as osp
import statistics
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import bench_util

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
RESULTS = osp.join(HERE, 'results')
OUT = osp.join(ROOT, 'docs', 'source', '_static', 'plots')
COMMAND = 'python benchmark/plots.py'
DPI = 100
GIB = 1024 ** 3
MIB = 1024 ** 2

# One color per method or mode, the same in every figure.
COLORS = {
    'gas': '#1f77b4', 'full': '#ff7f0e', 'gas-host': '#1f77b4',
    'gas-disk': '#2ca02c', 'metis': '#ff7f0e', 'lpmetis': '#1f77b4',
    'random': '#7f7f7f', 'gst': '#9467bd', 'gst-one': '#8c564b',
    'gst-e': '#e377c2', 'gst-efd': '#1f77b4',
}
LABELS = {
    'gas': 'GAS', 'full': 'full-batch', 'gas-host': 'GAS, host histories',
    'gas-disk': 'GAS, disk histories', 'metis': 'METIS',
    'lpmetis': 'LPMetis', 'random': 'random', 'gst': 'GST',
    'gst-one': 'GST-One', 'gst-e': 'GST+E', 'gst-efd': 'GST+EFD',
}
GST_VARIANTS = ('full', 'gst', 'gst-one', 'gst-e', 'gst-efd')
GST_LABELS = {**LABELS, 'full': 'full graph'}


class MissingResults(FileNotFoundError):
    r"""A figure's JSONL results are not under the results folder."""


def pyplot():
    r"""matplotlib's pyplot on the file-only backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('benchmark/plots.py needs matplotlib: pip install '
                         "matplotlib (or the 'plot' extra: pip install "
                         "-e '.[plot]')") from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    plt.rcParams.update({'font.size': 8, 'axes.titlesize': 9,
                         'legend.fontsize': 7, 'figure.dpi': DPI,
                         'axes.spines.top': False,
                         'axes.spines.right': False})
    return plt


def load(results: str, name: str,
         select: Callable[[Dict[str, Any]], bool] = lambda r: True
         ) -> List[Dict[str, Any]]:
    r"""The records of :obj:`name` (a JSONL file under :obj:`results`) that
    :obj:`select` picks; :class:`MissingResults` if there are none."""
    records = [r for r in bench_util.read_jsonl(osp.join(results, name))
               if select(r)]
    if not records:
        raise MissingResults(f'no {name} under {results}')
    return records


def by_config(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""The small benchmark's runs gathered per config: its model, dataset,
    device and threads, and its GAS and full-batch runs."""
    out: Dict[str, Dict[str, Any]] = {}
    for r in records:
        c = out.setdefault(r['config'], dict(
            config=r['config'], model=r['model'], dataset=r['dataset'],
            device=r.get('device'),
            threads=r.get('threads'), gas=[], full=[]))
        c[r['mode']].append(r)
    return list(out.values())


def mean_std(values: Sequence[float]):
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), std


def save(fig, out: str, name: str) -> str:
    path = osp.join(out, name)
    # Fixed metadata: the same results give the same bytes.
    fig.savefig(path, dpi=DPI, metadata={'Software': None})
    fig.clf()
    return path


# -------------------------------------------------------------- figures ----
def gas_vs_full(plt, results: str, out: str) -> str:
    runs = by_config(load(results, 'small.jsonl'))
    runs.sort(key=lambda r: (r['model'], r['dataset']))
    short = {'amazon-computers': 'Comp.', 'coauthor-cs': 'CS',
             'cora': 'Cora'}
    labels = [f"{r['model']}\n{short.get(r['dataset'], r['dataset'])}"
              for r in runs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    width = 0.38
    for i, mode in enumerate(('gas', 'full')):
        xs = [j + (i - 0.5) * width for j in range(len(runs))]
        acc = [mean_std(100 * s['test'] for s in r[mode]) for r in runs]
        sec = [mean_std(s['sec'] for s in r[mode]) for r in runs]
        kw = dict(width=width, color=COLORS[mode], label=LABELS[mode])
        axes[0].bar(xs, [m for m, _ in acc], yerr=[s for _, s in acc],
                    error_kw=dict(lw=0.8), **kw)
        axes[1].bar(xs, [m for m, _ in sec], yerr=[s for _, s in sec],
                    error_kw=dict(lw=0.8), **kw)
    low = min(100 * s['test'] for r in runs for m in ('gas', 'full')
              for s in r[m])
    axes[0].set_ylim(max(0, 5 * int(low // 5) - 5), 100)
    axes[0].set_ylabel('test accuracy (%)')
    axes[0].set_title('accuracy at the best validation epoch')
    axes[1].set_yscale('log')
    axes[1].set_ylabel('seconds per training epoch')
    axes[1].set_title('time per epoch (CPU, 1 thread)')
    for ax in axes:
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(labels, fontsize=6)
        ax.legend(loc='lower right' if ax is axes[0] else 'upper left')
    fig.suptitle('GAS against full-batch training, small graphs '
                 '(mean ± std over seeds)', fontsize=9)
    fig.tight_layout()
    return save(fig, out, 'gas_vs_full.png')


def memory(plt, results: str, out: str) -> str:
    runs = load(results, 'memory.jsonl', lambda r: r.get('kind', 'run')
                == 'run' and r.get('status') == 'ok')
    modes = [m for m in ('full', 'gas-host', 'gas-disk')
             if any(r['mode'] == m for r in runs)]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    panels = [
        ('step_bytes', MIB, 'MiB', 'memory of a training step'),
        ('peak_anon_bytes', GIB, 'GiB', 'peak anonymous host memory'),
        ('seconds_per_epoch', 1, 's', 'seconds per epoch (CPU)'),
    ]
    for ax, (key, unit, unit_name, title) in zip(axes, panels):
        for mode in modes:
            rows = sorted((r['num_nodes'], r[key] / unit) for r in runs
                          if r['mode'] == mode and r.get(key) is not None)
            style = '--' if mode == 'gas-disk' else '-'
            ax.plot([n for n, _ in rows], [v for _, v in rows], style,
                    marker='o', ms=3, color=COLORS[mode],
                    label=LABELS.get(mode, mode))
        if key == 'peak_anon_bytes':  # The histories themselves, for scale.
            rows = sorted((r['num_nodes'], r['history_bytes'] / unit)
                          for r in runs if r['mode'] == 'gas-host')
            ax.plot([n for n, _ in rows], [v for _, v in rows], ':',
                    color='black', lw=1, label='histories (size)')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('nodes')
        ax.set_ylabel(unit_name)
        ax.set_title(title)
    axes[0].legend()
    axes[1].legend()
    fig.suptitle('GCN, 3 layers of 128: full-batch against GAS as the '
                 'synthetic graph grows', fontsize=9)
    fig.tight_layout()
    return save(fig, out, 'memory.png')


def partition(plt, results: str, out: str) -> str:
    runs = load(results, 'partition.jsonl')
    methods = [m for m in ('metis', 'lpmetis', 'random')
               if any(r.get('method') == m for r in runs)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    panels = [('seconds', 1, 'seconds'),
              ('peak_over_baseline_bytes', GIB, 'peak RSS over the graph '
               '(GiB)')]
    for ax, (key, unit, ylabel) in zip(axes, panels):
        for method in methods:
            rows = sorted((r['num_edges'], r) for r in runs
                          if r.get('method') == method)
            done = [(e, r[key] / unit) for e, r in rows
                    if r.get('status') == 'ok' and r.get(key) is not None]
            ax.plot([e for e, _ in done], [v for _, v in done], marker='o',
                    ms=3, color=COLORS[method], label=LABELS[method])
            for e, r in rows:  # Time-outs and OOM: marked where they end.
                if r.get('status') == 'ok':
                    continue
                what = f"{LABELS[method]}: {r['status']}"
                value = r.get(key)
                if key == 'seconds' or value is None:
                    ax.axvline(e, color=COLORS[method], ls=':', lw=1)
                    ax.annotate(what, (e, 0.5), xycoords=('data',
                                'axes fraction'), xytext=(-4, 0),
                                textcoords='offset points', ha='right',
                                rotation=90, va='center', fontsize=7,
                                color=COLORS[method])
                    continue
                # A lower bound, polled before the run was stopped.
                ax.plot([e], [value / unit], marker='x', ms=7, mew=1.5,
                        color=COLORS[method], ls='none')
                ax.annotate(f'{what} (≥ {value / unit:.3g})',
                            (e, value / unit), textcoords='offset points',
                            xytext=(-8, 4), ha='right', fontsize=7,
                            color=COLORS[method])
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('undirected edges')
        ax.set_ylabel(ylabel)
    axes[0].set_title('time to partition (1 thread)')
    axes[1].set_title('memory while partitioning')
    axes[0].legend()
    fig.suptitle('Partitioning Amazon-Computers, Coauthor-CS and R-MAT '
                 'graphs of 1M to 100M edges',
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out, 'partition.png')


def gst(plt, results: str, out: str) -> str:
    records = load(results, 'gst.jsonl')
    runs = [r for r in records if r.get('kind', 'run') == 'run']
    timing = {r['variant']: r['ms_per_step'] for r in records
              if r.get('kind') == 'timing'}
    by_size = {r['variant']: r for r in records
               if r.get('kind') == 'memory_by_size'}
    if not runs or not timing or not by_size:
        raise MissingResults(f'no runs, timing or memory_by_size in '
                             f'gst.jsonl under {results}')
    variants = [v for v in GST_VARIANTS
                if any(r['variant'] == v for r in runs)]
    names = [GST_LABELS[v] for v in variants]
    colors = [COLORS[v] for v in variants]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))

    acc = [mean_std(100 * r['test'] for r in runs if r['variant'] == v)
           for v in variants]
    axes[0].bar(names, [m for m, _ in acc], yerr=[s for _, s in acc],
                color=colors, error_kw=dict(lw=0.8))
    low = min(m - s for m, s in acc)
    axes[0].set_ylim(max(0, 5 * int(low // 5) - 5), 100)
    epochs = sorted({r['epochs'] for r in runs})
    axes[0].set_title(f"test accuracy ({'/'.join(map(str, epochs))} "
                      f"epochs, {len(runs) // len(variants)} seeds)")
    axes[0].set_ylabel('%')

    ms = [timing.get(v) for v in variants]
    axes[1].bar(names, [m or 0 for m in ms], color=colors)
    axes[1].set_title('ms per step, side by side')
    axes[1].set_ylabel('ms')

    sizes = ('small', 'median', 'large')
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        xs = [j + (i - (len(variants) - 1) / 2) * width
              for j in range(len(sizes))]
        axes[2].bar(xs, [by_size[v][s] / MIB for s in sizes], width=width,
                    color=COLORS[v], label=GST_LABELS[v])
    nodes = [by_size[variants[0]][f'{s}_nodes'] for s in sizes]
    axes[2].set_xticks(range(len(sizes)))
    spans = [f'{min(n):,}' if min(n) == max(n) else f'{min(n):,}-{max(n):,}'
             for n in nodes]
    axes[2].set_xticklabels([f'{s}\n{span} nodes' for s, span in
                             zip(('smallest', 'median', 'largest'), spans)],
                            fontsize=6)
    axes[2].set_yscale('log')
    axes[2].set_ylabel('MiB')
    axes[2].set_title('step memory by graph size')
    axes[2].legend(fontsize=6)
    for ax in axes[:2]:
        ax.tick_params(axis='x', labelsize=6)
    fig.suptitle('Graph Segment Training variants on MalNet-Tiny (CPU)',
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out, 'gst.png')


def curves(plt, ax, runs: List[Dict[str, Any]], key: str,
           groups: Dict[str, Callable[[Dict[str, Any]], bool]],
           colors: Dict[str, str], scale: float = 100.0,
           log: bool = False) -> None:
    r"""Mean curve :obj:`key` of every group of runs, times
    :obj:`scale`, with a band of one standard deviation over the seeds
    (with :obj:`log`, of the values' logarithms: the geometric mean, times
    and divided by the geometric standard deviation, for a log axis). A
    curve is a list of values (one per epoch) or of (epoch, value)
    pairs."""
    for label, select in groups.items():
        chosen = [r[key] for r in runs if select(r)]
        if not chosen:
            continue
        points: Dict[int, List[float]] = {}
        for curve in chosen:
            for i, item in enumerate(curve):
                epoch, value = (item if isinstance(item, (list, tuple))
                                else (i + 1, item))
                value = scale * value
                points.setdefault(int(epoch), []).append(
                    math.log(value) if log else value)
        xs = sorted(points)
        stats = [mean_std(points[x]) for x in xs]
        back = math.exp if log else (lambda v: v)
        ys = [back(m) for m, _ in stats]
        ax.plot(xs, ys, color=colors[label], lw=1.2,
                label=f'{label} ({len(chosen)} seeds)')
        ax.fill_between(xs, [back(m - s) for m, s in stats],
                        [back(m + s) for m, s in stats],
                        color=colors[label], alpha=0.2, lw=0)


def gst_curve(plt, results: str, out: str) -> str:
    runs = load(results, 'gst_e120.jsonl',
                lambda r: r.get('kind', 'run') == 'run')
    fig, ax = plt.subplots(figsize=(6, 3))
    groups = {GST_LABELS[v]: (lambda r, v=v: r['variant'] == v)
              for v in GST_VARIANTS}
    curves(plt, ax, runs, 'val_curve', groups,
           {GST_LABELS[v]: COLORS[v] for v in GST_VARIANTS})
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation accuracy (%)')
    ax.set_title('MalNet-Tiny: full-graph training against GST+EFD '
                 '(before head finetuning)')
    ax.legend(loc='lower right')
    fig.tight_layout()
    return save(fig, out, 'gst_curve.png')


#: The configs of the learning-curve figure, in its rows.
CURVE_CONFIGS = ('gcn_cora', 'gcn_amazon_computers', 'gcn_coauthor_cs')


def default_setting(r: Dict[str, Any]) -> bool:
    r"""Whether a small-benchmark run used the reference protocol (history
    warm-up, METIS' fixed seed, the config as it is)."""
    return (r.get('warm_up', True) and not r.get('partition_seed', False)
            and not r.get('overrides', '')
            and r.get('partition', 'metis') == 'metis')


def gas_vs_full_curve(plt, results: str, out: str) -> str:
    found = {c['config']: c for c in by_config(load(
        results, 'small_curves.jsonl', lambda r: (
            r['config'] in CURVE_CONFIGS and 'loss_curve' in r
            and default_setting(r))))}
    rows = [found[c] for c in CURVE_CONFIGS if c in found]
    fig, axes = plt.subplots(len(rows), 2, figsize=(8, 2.4 * len(rows)),
                             squeeze=False)
    groups = {LABELS[m]: (lambda r, m=m: r['mode'] == m)
              for m in ('gas', 'full')}
    colors = {LABELS[m]: COLORS[m] for m in ('gas', 'full')}
    for (loss_ax, val_ax), result in zip(axes, rows):
        runs = result['gas'] + result['full']
        curves(plt, loss_ax, runs, 'loss_curve', groups, colors, scale=1.0,
               log=True)
        curves(plt, val_ax, runs, 'val_curve', groups, colors)
        name = f"{result['model']} on {result['dataset']}"
        loss_ax.set_ylabel('training loss (geom.)')
        loss_ax.set_yscale('log')
        val_ax.set_ylabel('validation acc. (%)')
        loss_ax.set_title(name, fontsize=9)
        val_ax.set_title(name, fontsize=9)
        val_ax.legend(loc='lower right', fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel('epoch')
    fig.suptitle(f"GAS against full-batch training, mean ± std over seeds "
                 f"({rows[0]['device']}, {rows[0]['threads']} thread"
                 f"{'s' if rows[0]['threads'] != 1 else ''})", fontsize=10)
    fig.tight_layout()
    return save(fig, out, 'gas_vs_full_curve.png')


def distributed_curve(plt, results: str, out: str) -> str:
    runs = load(results, 'distributed.jsonl',
                lambda r: r['dataset'] == 'cora')
    fig, ax = plt.subplots(figsize=(6, 3))
    groups = {
        '1 process': lambda r: (r['world_size'] == 1
                                and r['history'] == 'sharded'
                                and r['threads'] == 1),
        '2 processes, sharded histories': lambda r: (
            r['world_size'] == 2 and r['history'] == 'sharded'),
        '2 processes, shared histories': lambda r: (
            r['world_size'] == 2 and r['history'] == 'shared'),
    }
    colors = dict(zip(groups, ('#1f77b4', '#ff7f0e', '#2ca02c')))
    curves(plt, ax, runs, 'val_curve', groups, colors)
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation accuracy (%)')
    ax.set_ylim(30, 90)
    ax.set_title('GCN with GAS on Cora, data-parallel (gloo, CPU)')
    ax.legend(loc='lower right')
    fig.tight_layout()
    return save(fig, out, 'distributed_curve.png')


FIGURES: Dict[str, Callable] = {
    'gas_vs_full': gas_vs_full,
    'gas_vs_full_curve': gas_vs_full_curve,
    'memory': memory,
    'partition': partition,
    'gst': gst,
    'gst_curve': gst_curve,
    'distributed_curve': distributed_curve,
}


def main(argv: Optional[List[str]] = None) -> List[str]:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--results', default=RESULTS,
                        help='folder of the committed benchmark results')
    parser.add_argument('--out', default=OUT,
                        help='folder the PNG files are written to')
    parser.add_argument('--only', nargs='+', choices=sorted(FIGURES),
                        default=list(FIGURES), help='figures to draw')
    args = parser.parse_args(argv)
    plt = pyplot()
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name in args.only:
        try:
            path = FIGURES[name](plt, args.results, args.out)
        except MissingResults as e:
            print(f'{name}: skipped, {e}', file=sys.stderr)
            continue
        finally:
            plt.close('all')
        written.append(path)
        print(f'{path}: {osp.getsize(path) / 1024:.0f} KiB')
    return written


if __name__ == '__main__':
    main()
