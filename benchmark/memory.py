r"""Memory of GAS training as the graph grows: full-batch against GAS with
host and with disk histories, and the planner's prediction against the
measurement.

For every graph size (synthetic graphs with communities of 1,000 nodes laid
out contiguously, average degree 10, 32 features, 8 classes; a 3-layer GCN
of width 128), every mode runs in its own process:

* ``full``: one full-batch training step per epoch;
* ``gas-host`` and ``gas-disk``: GAS with clusters = communities, 10 per
  mini-batch, histories in host memory or in a memory-mapped file.

Measured per run: the memory of a training step's tensors (parameters,
gradients and Adam states; the largest mini-batch's features and adjacency;
the bytes autograd keeps for the backward pass, by
:class:`~torch_autoscale.utils.StepMemory`), the history bytes, the process'
peak resident memory and its peak anonymous memory (file-backed pages of the
disk tier excluded), and seconds per epoch. Predicted: the same step
memory by :func:`torch_autoscale.plan.estimate`, from the graph and
mini-batch sizes alone.

A second experiment trains GAS on one graph with host and with disk
histories (the disk tier chosen by :func:`torch_autoscale.plan.plan` for a
host budget the histories exceed) and compares their accuracy.

    python benchmark/memory.py --sizes 100000 250000 500000 1000000 2000000 \
        4000000
"""
import argparse
import dataclasses
import json
import logging
import os.path as osp
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import partition, sort_by_cluster
from torch_autoscale.plan import (
    GraphStats,
    ModelSpec,
    Placement,
    estimate,
    halo_stats,
)
from torch_autoscale.utils import StepMemory, csr_adj_t

import bench_util
from bench_util import GiB, current_rss, peak_rss, reset_peak_rss

log = logging.getLogger('memory')
BLOCK = 1000  # Community size = cluster size.
HIDDEN, LAYERS, FEATURES, CLASSES = 128, 3, 32, 8
MODES = ('full', 'gas-host', 'gas-disk')


def community_graph(num_nodes: int, avg_degree: float = 10.0,
                    p_in: float = 0.9, seed: int = 0) -> Data:
    r"""A graph of communities of :obj:`BLOCK` consecutive nodes: every
    undirected edge starts at a uniform node and ends, with probability
    :obj:`p_in`, at a uniform node of its community, else anywhere. A node's
    class is its community's index modulo 8 (for two thirds of the nodes; a
    random class for the rest); features are a class centroid (scale 0.25)
    plus unit Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    num_edges = int(num_nodes * avg_degree / 2)
    src = torch.randint(num_nodes, (num_edges, ), generator=gen)
    block = src // BLOCK
    start = block * BLOCK
    size = torch.clamp(num_nodes - start, max=BLOCK)
    inside = torch.rand(num_edges, generator=gen) < p_in
    dst = torch.where(
        inside, start + (torch.rand(num_edges, generator=gen) * size).long(),
        torch.randint(num_nodes, (num_edges, ), generator=gen))
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    y = (torch.arange(num_nodes) // BLOCK) % CLASSES
    # A third of the nodes get a random class, so that accuracy is not
    # trivially perfect (at most about 71%).
    noisy = torch.rand(num_nodes, generator=gen) < 1 / 3
    y = torch.where(noisy, torch.randint(CLASSES, (num_nodes, ),
                                         generator=gen), y)
    centroids = torch.randn(CLASSES, FEATURES, generator=gen)
    x = 0.25 * centroids[y] + torch.randn(num_nodes, FEATURES, generator=gen)
    split = torch.rand(num_nodes, generator=gen)
    return Data(x=x, y=y, edge_index=edge_index, train_mask=split < 0.1,
                val_mask=(split >= 0.1) & (split < 0.2),
                test_mask=split >= 0.2)


def prepare(num_nodes: int, seed: int = 0):
    r"""The graph with its normalized adjacency and cluster boundaries."""
    data = community_graph(num_nodes, seed=seed)
    num_parts = (num_nodes + BLOCK - 1) // BLOCK
    cluster = partition(data.edge_index, num_parts, method='contiguous',
                        num_nodes=num_nodes)
    _, ptr = sort_by_cluster(cluster, num_parts)  # Identity permutation.
    adj_t = csr_adj_t(data.edge_index, num_nodes)
    data.adj_t, _ = gcn_norm(adj_t, add_self_loops=True)
    return data, ptr


class AnonPeak:
    r"""Polls the process' anonymous resident memory (RssAnon: heap and
    tensors, not file-backed pages such as a memory-mapped disk tier)."""
    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self._stop = interval, 0, False

    def _run(self):
        while not self._stop:
            kib = bench_util.status_kib('self', 'RssAnon') or 0
            self.peak = max(self.peak, 1024 * kib)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *args):
        self._stop = True
        self._thread.join()


def tensor_bytes(x) -> int:
    if x.layout == torch.sparse_csr:
        return sum(t.numel() * t.element_size()
                   for t in (x.crow_indices(), x.col_indices(), x.values()))
    return x.numel() * x.element_size()


def model_state_bytes(model, optimizer) -> int:
    r"""Parameters, gradients and optimizer states."""
    total = sum(tensor_bytes(p) for p in model.parameters())
    total += sum(tensor_bytes(p.grad) for p in model.parameters()
                 if p.grad is not None)
    for state in optimizer.state.values():
        total += sum(tensor_bytes(v) for v in state.values()
                     if torch.is_tensor(v) and v.dim() > 0)
    return total


def train_epoch(model, optimizer, data, loader) -> Dict[str, Any]:
    r"""One epoch; returns the largest step's measurements."""
    model.train()
    widths = sum([FEATURES] + [HIDDEN] * (LAYERS - 1))
    best = dict(saved=0)
    start = time.perf_counter()
    batches = [None] if loader is None else loader
    for batch in batches:
        if batch is None:
            x, adj_t, mask, y = data.x, data.adj_t, data.train_mask, data.y
            rows, args = data.num_nodes, ()
        else:
            d, bs = batch.data, batch.batch_size
            x, adj_t = d.x, d.adj_t
            mask, y, rows, args = d.train_mask[:bs], d.y[:bs], \
                batch.n_id.numel(), (batch, )
        optimizer.zero_grad()
        with StepMemory('cpu') as mem:
            out = model(x, adj_t, *args)[:mask.numel()]
            loss = F.cross_entropy(out[mask], y[mask])
        loss.backward()
        optimizer.step()
        if mem.peak_bytes > best['saved']:
            best = dict(saved=mem.peak_bytes, rows=rows,
                        elements=rows * widths,
                        batch_bytes=tensor_bytes(x) + tensor_bytes(adj_t))
    best['seconds'] = time.perf_counter() - start
    return best


@torch.no_grad()
def test_accuracy(model, data) -> Dict[str, float]:
    model.eval()
    out = model(data.x, data.adj_t)
    pred = out.argmax(-1)
    return {
        key: float((pred[m] == data.y[m]).float().mean())
        for key, m in (('val', data.val_mask), ('test', data.test_mask))
    }


def worker(spec: Dict[str, Any]):
    torch.set_num_threads(spec['threads'])
    torch.sparse.check_sparse_tensor_invariants.disable()
    data, ptr = prepare(spec['num_nodes'])
    result = dict(spec, status='running', **bench_util.provenance())
    for key in ('result', 'disk_dir'):  # Where this process wrote.
        result.pop(key, None)
    mode = spec['mode']
    torch.manual_seed(0)
    kwargs = {}
    if mode == 'gas-disk':
        kwargs = dict(history_storage='disk', history_dir=spec['disk_dir'])
    if spec.get('history_storage'):  # A plan's placement.
        kwargs = dict(history_storage=spec['history_storage'],
                      history_dir=spec['disk_dir'])
    model = GCN(data.num_nodes, FEATURES, HIDDEN, CLASSES, LAYERS,
                **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = None
    if mode != 'full':
        loader = SubgraphLoader(data, ptr, batch_size=spec['batch_size'],
                                shuffle=False)
    result['baseline_rss_bytes'] = current_rss()
    reset_peak_rss()
    epochs = []
    with AnonPeak() as anon:
        for _ in range(spec['epochs']):
            epochs.append(train_epoch(model, optimizer, data, loader))
    last = epochs[-1]
    result.update(
        status='ok', saved_bytes=max(e['saved'] for e in epochs),
        elements=last['elements'], rows=last['rows'],
        batch_bytes=last['batch_bytes'],
        state_bytes=model_state_bytes(model, optimizer),
        history_bytes=sum(h.emb.numel() * h.emb.element_size()
                          for h in model.histories) if mode != 'full' else 0,
        seconds_per_epoch=min(e['seconds'] for e in epochs),
        peak_rss_bytes=peak_rss(), peak_anon_bytes=anon.peak)
    result['step_bytes'] = (result['saved_bytes'] + result['batch_bytes'] +
                            result['state_bytes'])
    if spec.get('accuracy'):
        result.update(test_accuracy(model, data))
    with open(spec['result'], 'w') as f:
        json.dump(result, f, indent=1)


def run(spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    r"""Runs :func:`worker` in a fresh process; a crash or time-out is
    recorded, not raised."""
    with tempfile.TemporaryDirectory(prefix='memory-bench-') as tmp:
        spec = dict(spec, result=osp.join(tmp, 'result.json'))
        spec.setdefault('disk_dir', tmp)
        try:
            proc = subprocess.run(
                [sys.executable, osp.abspath(__file__), '--worker',
                 json.dumps(spec)], capture_output=True, text=True,
                timeout=timeout)
            if osp.exists(spec['result']):
                with open(spec['result']) as f:
                    return json.load(f)
            status = ('OOM' if proc.returncode == -9 or 'MemoryError'
                      in proc.stderr else f'failed: {proc.stderr[-500:]}')
        except subprocess.TimeoutExpired:
            status = f'timeout after {timeout:g} s'
    out = dict(spec, status=status)
    for key in ('result', 'disk_dir'):
        out.pop(key, None)
    return out


def predict(runs: List[Dict[str, Any]]) -> None:
    r"""Adds the planner's prediction to every run that finished (the
    default bytes per activation element: the GCN here has no dropout)."""
    graphs: Dict[int, Any] = {}
    for r in runs:
        if r['status'] != 'ok':
            continue
        if r['num_nodes'] not in graphs:
            graphs[r['num_nodes']] = prepare(r['num_nodes'])
        data, ptr = graphs[r['num_nodes']]
        stats = GraphStats.from_data(
            Data(x=data.x, adj_t=data.adj_t, num_nodes=data.num_nodes))
        spec = ModelSpec(LAYERS, FEATURES, HIDDEN, CLASSES,
                         optimizer_states=2)
        if r['mode'] == 'full':
            ptr = torch.tensor([0, data.num_nodes])
            halo = halo_stats(data.edge_index, ptr, 1)
            # Full-batch: the adjacency holds self-loops the edge list lacks.
            halo = dataclasses.replace(halo, max_edges=data.adj_t._nnz())
        else:
            halo = halo_stats(
                _with_loops(data.edge_index, data.num_nodes), ptr,
                r['batch_size'])
        tier = 'disk' if r['mode'] == 'gas-disk' else 'host'
        placement = Placement((tier, ) * (LAYERS - 1),
                              ('float32', ) * (LAYERS - 1), (False, ) * LAYERS)
        e = estimate(stats, spec, halo, placement, device='cpu')
        predicted = (e.breakdown['parameters'] + e.breakdown['batch'] +
                     e.breakdown['activations'])
        r.update(predicted_step_bytes=predicted,
                 predicted_history_bytes=(e.breakdown['host histories'] +
                                          e.disk_bytes))


def budget_experiment(args, command: str) -> Dict[str, Any]:
    r"""GAS with host histories, and with the placement
    :func:`~torch_autoscale.plan.plan` picks for a host budget that the
    histories exceed (disk tier), same seed and epochs: their accuracy."""
    from torch_autoscale.plan import plan
    n = args.budget_nodes
    data, _ = prepare(n)
    spec = ModelSpec(LAYERS, FEATURES, HIDDEN, CLASSES)
    fixed = dict(num_parts=[(n + BLOCK - 1) // BLOCK],
                 batch_sizes=[args.batch_size], method='contiguous',
                 precision='float32-only', recompute=False, device='cpu')
    roomy = plan(data, spec, **fixed)
    tables = (LAYERS - 1) * n * HIDDEN * 4
    budget = roomy.estimate.host_bytes - tables // 2
    with tempfile.TemporaryDirectory(prefix='memory-budget-') as tmp:
        tight = plan(data, spec, host_budget=budget, disk_dir=tmp, **fixed)
        out = dict(num_nodes=n, host_budget_bytes=budget,
                   history_bytes=tables, plan=str(tight),
                   tiers=list(tight.placement.tiers), command=command)
        for name, storage in (('host', ['host'] * (LAYERS - 1)),
                              ('planned', list(tight.placement.tiers))):
            spec_ = dict(num_nodes=n, mode='gas-host', epochs=args.epochs_acc,
                         batch_size=args.batch_size, threads=args.threads,
                         command=command, accuracy=True,
                         history_storage=storage, disk_dir=tmp)
            out[name] = run(spec_, args.timeout)
    return out


def _with_loops(edge_index, num_nodes):
    loops = torch.arange(num_nodes).repeat(2, 1)
    return torch.cat([edge_index, loops], dim=1)


def write_table(jsonl: str, path: str) -> str:
    r"""The tables of the records in :obj:`jsonl`: memory as the graph
    grows, and the host-budget experiment."""
    records = bench_util.read_jsonl(jsonl)
    runs = [r for r in records if r.get('kind', 'run') == 'run']
    rows = []
    for r in sorted(runs, key=lambda r: (r['num_nodes'],
                                         MODES.index(r['mode']))):
        if r['status'] != 'ok':
            rows.append([f"{r['num_nodes']:,}", r['mode']] + [''] * 7 +
                        [r['status']])
            continue
        ratio = (f"{r['predicted_step_bytes'] / r['step_bytes']:.3f}"
                 if 'predicted_step_bytes' in r else '-')
        pred = (f"{r['predicted_step_bytes'] / 2**20:.1f}"
                if 'predicted_step_bytes' in r else '-')
        rows.append([
            f"{r['num_nodes']:,}", r['mode'], f"{r['step_bytes'] / 2**20:.1f}",
            pred, ratio, f"{r['history_bytes'] / 2**20:.1f}",
            f"{(r['peak_rss_bytes'] - r['baseline_rss_bytes']) / GiB:.3f}",
            f"{r['peak_anon_bytes'] / GiB:.3f}",
            f"{r['seconds_per_epoch']:.2f}", 'ok'])
    commits = ', '.join(sorted({str(r.get('commit', 'unknown'))[:10]
                                for r in runs}))
    body = [
        f"torch {bench_util.values(runs, 'torch')}, CPU, "
        f"{bench_util.values(runs, 'threads')} thread(s), commit "
        f"{commits}. Synthetic graphs with communities of {BLOCK} nodes, "
        f'average degree 10, {FEATURES} features; GCN with {LAYERS} layers '
        f'of width {HIDDEN}, Adam. GAS: one cluster per community, '
        f"{bench_util.values(runs, 'batch_size')} clusters per mini-batch. "
        '*Step*: parameters, gradients and Adam states + the largest '
        'mini-batch (features, adjacency) + the bytes autograd keeps for the '
        'backward pass; *predicted*: `torch_autoscale.plan.estimate` from '
        'the graph and batch sizes alone, when the run was measured. *Peak '
        'RSS*: the process peak above its RSS once the graph, the model and '
        'its histories exist (the file pages of disk histories count in RSS '
        'as they are touched); *anon*: the peak anonymous memory of the '
        'whole process (heap and tensors; file-backed pages of the disk '
        'tier excluded).', ''
    ] + bench_util.markdown_table(
        ['nodes', 'mode', 'step (MiB)', 'predicted (MiB)',
         'predicted / measured', 'histories (MiB)',
         'peak RSS over baseline (GiB)', 'peak anon (GiB)', 's / epoch',
         'status'], rows)
    for b in records:
        if b.get('kind') == 'budget':
            body += budget_table(b)
    return bench_util.write_markdown(
        path, 'Memory of GAS training as the graph grows',
        bench_util.commands(records), body)


def budget_table(b: Dict[str, Any]) -> List[str]:
    lines = [
        '', '## Histories beyond a host budget', '',
        f"GAS on {b['num_nodes']:,} nodes, {b['history_bytes'] / 2**20:.1f} "
        f"MiB of histories, host budget "
        f"{b['host_budget_bytes'] / 2**20:.1f} MiB (what the host-tier "
        'plan needs minus half the histories). The plan for that budget:',
        '', '```', b['plan'], '```', '',
        '| run | tiers | val | test | peak anon (GiB) | s / epoch | status |',
        '|---|---|---|---|---|---|---|']
    for name in ('host', 'planned'):
        r = b[name]
        if r['status'] != 'ok':
            lines.append(f"| {name} | | | | | | {r['status']} |")
            continue
        lines.append(
            f"| {name} | {', '.join(r['history_storage'])} | "
            f"{100 * r['val']:.2f} | {100 * r['test']:.2f} | "
            f"{r['peak_anon_bytes'] / GiB:.3f} | "
            f"{r['seconds_per_epoch']:.2f} | ok |")
    return lines


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[100_000, 250_000, 500_000, 1_000_000,
                                 2_000_000, 4_000_000])
    parser.add_argument('--modes', nargs='+', default=list(MODES),
                        choices=MODES)
    parser.add_argument('--batch-size', type=int, default=10)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--timeout', type=float, default=3600)
    parser.add_argument('--budget-nodes', type=int, default=200_000,
                        help='graph size of the host-budget experiment '
                        '(0: none)')
    parser.add_argument('--epochs-acc', type=int, default=20,
                        help='epochs of the host-budget experiment')
    bench_util.add_output_options(parser, 'memory')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.worker is not None:
        worker(json.loads(args.worker))
        return ''
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        command = bench_util.command_line(__file__, argv)
        todo = {('run', n, m) for n in args.sizes for m in args.modes}
        if args.budget_nodes > 0:
            todo.add(('budget', None, None))

        def key(r):
            kind = r.get('kind', 'run')
            return (kind, r.get('num_nodes') if kind == 'run' else None,
                    r.get('mode'))

        # What a command redoes replaces its records; --skip-done keeps
        # those already there instead.
        records = bench_util.drop_jsonl(
            jsonl, lambda r: not args.skip_done and key(r) in todo)
        done = {key(r) for r in records}
        for n in args.sizes:
            runs = []
            for mode in args.modes:
                if ('run', n, mode) in done:
                    continue
                spec = dict(num_nodes=n, mode=mode, epochs=args.epochs,
                            batch_size=args.batch_size, threads=args.threads,
                            command=command)
                r = run(spec, args.timeout)
                log.info('%d %s: %s', n, mode, {
                    k: r.get(k)
                    for k in ('status', 'step_bytes', 'seconds_per_epoch')
                })
                runs.append(dict(kind='run', **r))
            predict(runs)
            bench_util.append_jsonl(jsonl, *runs)
        if ('budget', None, None) in todo - done:
            bench_util.append_jsonl(jsonl, dict(
                kind='budget', **budget_experiment(args, command)))
    text = write_table(jsonl, args.out)
    print(text)
    return text


if __name__ == '__main__':
    main()
