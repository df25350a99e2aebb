r"""Partitioners side by side: METIS, LPMetis and random parts on real graphs
(Amazon-Computers, Coauthor-CS) and on synthetic R-MAT graphs of growing
size, measuring the seconds of the partition call, the peak memory (RSS) of
the process doing it, and the quality of the parts: edge cut (EC), balance
(BAL) and the spread of part sizes (STD), see
:func:`torch_autoscale.partition.partition_report`.

    python benchmark/partition.py --root data
    python benchmark/partition.py --root data --edges 1 10 --methods lpmetis
    python benchmark/partition.py --graphs computers cs rmat1 --skip-done
    python benchmark/partition.py --table-only

Graphs are prepared once and cached as ``.pt`` files (a symmetric, sorted
``edge_index`` of shape ``[2, 2E]`` without self-loops or duplicates, and
``num_nodes``) under ``--cache-dir``. R-MAT graphs are generated in a
subprocess from ``--seed`` (Graph500 parameters, see :func:`rmat`); the real
graphs are read from ``--root`` (never downloaded) and skipped with a message
when absent. Graph names are ``computers``, ``cs`` and ``rmat<E>`` for ``E``
million undirected edges (``--edges``, or named in ``--graphs``).

Every (graph, method) measurement runs in a fresh subprocess that loads the
cached graph, records its RSS (the baseline), resets the peak-RSS mark, runs
``partition(..., method=...)`` and reports the seconds, the peak RSS and the
quality of the parts. The parent enforces ``--timeout`` and polls the child's
peak RSS meanwhile, so that a run cut off by the time limit or killed by the
OOM killer is recorded with the peak it reached, as is a run that fails.
Each run is appended to the JSONL file beside the table (``--out``) as soon
as it ends (``--skip-done`` resumes); the Markdown tables are rebuilt from
all of them (``--table-only`` only rebuilds).
"""
import argparse
import ast
import json
import logging
import math
import os
import os.path as osp
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import bench_util
from bench_util import GiB, current_rss, peak_rss, reset_peak_rss

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
METHODS = ('metis', 'lpmetis', 'random')
REAL_GRAPHS = {  # name -> (PyG class, folder under --root, dataset name)
    'computers': ('Amazon', 'Amazon', 'Computers'),
    'cs': ('Coauthor', 'Coauthor', 'CS'),
}
RMAT_PROBS = (0.57, 0.19, 0.19, 0.05)  # Graph500: a, b, c, d.
RMAT_CHUNK = 1 << 16  # Edges drawn at once (changing it changes the graphs).
SCALING_BAR = 2.4  # LPMetis seconds per doubling of the edges, at most.
EC_BAR = 1.6  # LPMetis edge cut over METIS edge cut on real graphs, at most.
log = logging.getLogger('partition')


# R-MAT #######################################################################


def _rmat_draw(num: int, scale: int, perm: torch.Tensor,
               gen: torch.Generator, probs=RMAT_PROBS,
               chunk_size: int = RMAT_CHUNK) -> np.ndarray:
    r"""Draws :obj:`num` R-MAT edges in chunks and returns the sorted,
    distinct keys :obj:`min(u, v) << scale | max(u, v)` of those that are no
    self-loops (node ids relabelled by :obj:`perm`). The graph of a seed
    depends on :obj:`chunk_size` (the order of the draws); small chunks stay
    in the CPU caches and keep the temporaries small."""
    a, b, c, _ = probs
    out: List[np.ndarray] = []
    for start in range(0, num, chunk_size):
        m = min(chunk_size, num - start)
        src = torch.zeros(m, dtype=torch.long)
        dst = torch.zeros(m, dtype=torch.long)
        for level in range(scale):  # All edges of the chunk at once.
            u = torch.rand(m, generator=gen)
            lower = u >= a + b  # Quadrants c, d: the source bit is set.
            right = ((u >= a) & ~lower) | (u >= a + b + c)  # b or d.
            src.bitwise_or_(lower.long() << level)
            dst.bitwise_or_(right.long() << level)
        src, dst = perm[src], perm[dst]
        lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
        del src, dst
        mask = lo != hi
        key = ((lo[mask] << scale) | hi[mask]).numpy()
        out.append(np.unique(key))
    return _merge(out)


def _merge(parts: Sequence[np.ndarray]) -> np.ndarray:
    r"""The sorted distinct values of all :obj:`parts` (sorted in place, no
    index array)."""
    keys = np.concatenate(parts) if len(parts) != 1 else parts[0].copy()
    keys.sort()
    if keys.size == 0:
        return keys
    keep = np.empty(keys.size, dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def rmat(num_edges: int, seed: int = 0, edge_factor: int = 16,
         probs: Tuple[float, float, float, float] = RMAT_PROBS,
         ) -> Tuple[torch.Tensor, int]:
    r"""A synthetic R-MAT graph with :obj:`num_edges` undirected edges.

    Graph500 recipe: :obj:`num_nodes` is the power of two at or above
    :obj:`num_edges / edge_factor` (larger only where the graph could not
    hold that many distinct edges), every edge picks one of the four
    quadrants of the adjacency matrix with probabilities :obj:`probs`
    :math:`(a, b, c, d)` at every level (drawn for all edges at once, no
    per-level noise), and node ids are randomly permuted. Self-loops and
    duplicates (also :math:`(u, v)` against :math:`(v, u)`) are removed. As
    duplicates grow with the number of draws, edges are drawn in rounds:
    an estimate, then top-ups using the measured rate of new distinct edges
    until there are at least :obj:`num_edges`; the surplus (a few percent)
    is dropped uniformly at random, so the graph has exactly
    :obj:`num_edges` edges. Everything is drawn from one generator seeded
    by :obj:`seed`, so the graph repeats for a seed.

    Memory: about twice the returned :obj:`edge_index` at the peak (8 bytes
    per distinct key while drawing, twice that while merging, then the
    sorted symmetric keys and the output); a 100M-edge graph: 3.2 GB
    returned, about 6.5 GB at the peak (measured 2.0 times at 1M edges).

    Returns:
        (torch.Tensor, int): The :obj:`int64` :obj:`edge_index` of shape
        :obj:`[2, 2 * num_edges]`, symmetric and sorted by row then column,
        and :obj:`num_nodes`.
    """
    num_edges = int(num_edges)
    if num_edges < 1:
        raise ValueError(f"'num_edges' must be positive (got {num_edges})")
    if not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
        raise ValueError(f"'probs' must sum to one (got {probs})")
    scale = max(1, (math.ceil(num_edges / edge_factor) - 1).bit_length())
    while (1 << scale) * ((1 << scale) - 1) // 2 < 4 * num_edges:
        scale += 1  # Only tiny graphs: room for the distinct edges.
    num_nodes = 1 << scale
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(num_nodes, generator=gen)

    num = math.ceil(1.15 * num_edges)
    keys, drawn = _rmat_draw(num, scale, perm, gen, probs), num
    rate = keys.size / drawn  # Distinct edges per draw so far.
    for _ in range(50):
        if keys.size >= num_edges:
            break
        # New draws hit known edges more often than the average so far:
        num = math.ceil(1.1 * (num_edges - keys.size) / (0.85 * rate)) + 16
        before = keys.size
        keys = _merge([keys, _rmat_draw(num, scale, perm, gen, probs)])
        rate = max((keys.size - before) / num, 1e-3)
    else:
        raise RuntimeError(f'R-MAT could not reach {num_edges} distinct '
                           f'edges on {num_nodes} nodes')

    surplus = keys.size - num_edges
    if surplus > 0:  # Drop `surplus` distinct random positions:
        drop = torch.empty(0, dtype=torch.long)
        while drop.numel() < surplus:
            more = torch.randint(keys.size, (2 * surplus + 16, ),
                                 generator=gen)
            drop = torch.cat([drop, more]).unique()
        drop = drop[torch.randperm(drop.numel(), generator=gen)[:surplus]]
        keep = np.ones(keys.size, dtype=bool)
        keep[drop.numpy()] = False
        keys = keys[keep]
        del keep

    # Symmetrize into one sorted key array, then split it into rows/cols:
    both = np.empty(2 * num_edges, dtype=np.int64)
    both[:num_edges] = keys
    mask = num_nodes - 1
    np.bitwise_and(keys, mask, out=both[num_edges:])
    np.left_shift(both[num_edges:], scale, out=both[num_edges:])
    both[num_edges:] |= keys >> scale
    del keys
    both.sort()
    edge_index = torch.empty(2, 2 * num_edges, dtype=torch.long)
    np.right_shift(both, scale, out=edge_index[0].numpy())
    np.bitwise_and(both, mask, out=edge_index[1].numpy())
    return edge_index, num_nodes


# Graphs ######################################################################


def rmat_edges(name: str) -> int:
    r"""The number of undirected edges of the R-MAT graph :obj:`rmat<E>`
    (:obj:`E` in millions)."""
    return int(round(float(name[len('rmat'):]) * 1e6))


def rmat_name(millions: float) -> str:
    return f'rmat{millions:g}'


def is_rmat(name: str) -> bool:
    if not name.startswith('rmat'):
        return False
    try:
        return rmat_edges(name) > 0
    except ValueError:
        return False


def graph_path(name: str, args) -> str:
    if is_rmat(name):
        return osp.join(args.cache_dir,
                        f'rmat_{rmat_edges(name)}_seed{args.seed}_ef'
                        f'{args.edge_factor}.pt')
    return osp.join(args.cache_dir, f'{name}.pt')


def real_available(name: str, root: str) -> bool:
    _, folder, sub = REAL_GRAPHS[name]
    return any(osp.isdir(osp.join(root, folder, sub, d))
               for d in ('raw', 'processed'))


def make_graph(name: str, args) -> Dict[str, Any]:
    r"""Builds graph :obj:`name` in this process and returns what the cache
    file holds."""
    from torch_geometric.utils import remove_self_loops, to_undirected
    t = time.perf_counter()
    if is_rmat(name):
        target = rmat_edges(name)
        edge_index, num_nodes = rmat(target, args.seed, args.edge_factor)
        info = dict(kind='rmat', target_edges=target, seed=args.seed,
                    edge_factor=args.edge_factor, probs=list(RMAT_PROBS))
    else:
        import torch_geometric.datasets as D
        cls, folder, sub = REAL_GRAPHS[name]
        data = getattr(D, cls)(osp.join(args.root, folder), sub)[0]
        num_nodes = data.num_nodes
        edge_index, _ = remove_self_loops(data.edge_index)
        edge_index = to_undirected(edge_index, num_nodes=num_nodes)
        info = dict(kind='real', dataset=f'{cls}-{sub}')
    return dict(name=name, edge_index=edge_index, num_nodes=int(num_nodes),
                num_edges=edge_index.size(1) // 2,
                build_seconds=time.perf_counter() - t,
                build_peak_rss_bytes=peak_rss(), **info)


def ensure_graph(name: str, args) -> Optional[str]:
    r"""The cache file of :obj:`name`, built in a subprocess if missing;
    :obj:`None` (with a message) if it cannot be built."""
    path = graph_path(name, args)
    if osp.exists(path):
        return path
    if not is_rmat(name) and not real_available(name, args.root):
        _, folder, sub = REAL_GRAPHS[name]
        log.info('Skipping %s: %s not found (nothing is downloaded)', name,
                 osp.join(args.root, folder, sub))
        return None
    os.makedirs(args.cache_dir, exist_ok=True)
    log.info('Building %s into %s', name, path)
    spec = dict(task='make', name=name, path=path, root=args.root,
                seed=args.seed, edge_factor=args.edge_factor,
                threads=args.threads)
    proc = subprocess.run([sys.executable, osp.abspath(__file__), '--worker',
                           json.dumps(spec)], env=worker_env(args.threads))
    if proc.returncode != 0 or not osp.exists(path):
        log.error('Building %s failed (exit status %s)', name,
                  proc.returncode)
        return None
    return path


def load_graph(path: str) -> Dict[str, Any]:
    return torch.load(path, weights_only=True)


def graph_meta(path: str) -> Dict[str, Any]:
    r""":obj:`num_nodes` and :obj:`num_edges` of a cached graph, from the
    small JSON file written next to it."""
    meta = path[:-len('.pt')] + '.json'
    if osp.exists(meta):
        with open(meta) as f:
            info = json.load(f)
    else:
        info = load_graph(path)
    return dict(num_nodes=info['num_nodes'], num_edges=info['num_edges'])


# Worker ######################################################################


def worker_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
        env[var] = str(threads)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (ROOT, env.get('PYTHONPATH')) if p)
    return env


def is_out_of_memory(error: BaseException) -> bool:
    r"""Whether :obj:`error` says that memory ran out (PyTorch's allocator
    raises a :obj:`RuntimeError`, METIS reports :obj:`METIS_ERROR_MEMORY`)."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(
        s in text for s in ('allocate memory', 'out of memory',
                            'metis_error_memory', 'bad_alloc'))


def worker(spec: Dict[str, Any]):
    r"""The subprocess side: builds a graph (:obj:`task="make"`) or measures
    one partition call (:obj:`task="run"`)."""
    torch.set_num_threads(int(spec.get('threads', 1)))
    if spec['task'] == 'make':
        args = argparse.Namespace(**spec)
        graph = make_graph(spec['name'], args)
        tmp = spec['path'] + '.tmp'
        torch.save(graph, tmp)
        bench_util.write_json(
            spec['path'][:-len('.pt')] + '.json',
            {k: v for k, v in graph.items() if k != 'edge_index'})
        os.replace(tmp, spec['path'])
        log.info('%s: %d nodes, %d undirected edges, built in %.1fs (peak '
                 'RSS %.2f GiB)', spec['name'], graph['num_nodes'],
                 graph['num_edges'], graph['build_seconds'],
                 graph['build_peak_rss_bytes'] / GiB)
        return

    from torch_autoscale.partition import partition, partition_report
    out = spec['result']
    t = time.perf_counter()
    graph = load_graph(spec['graph_path'])
    edge_index, num_nodes = graph['edge_index'], graph['num_nodes']
    result = dict(load_seconds=time.perf_counter() - t,
                  num_nodes=num_nodes, num_edges=graph['num_edges'],
                  threads=torch.get_num_threads(), status='running')
    result['baseline_rss_bytes'] = current_rss()
    result['peak_reset'] = reset_peak_rss()
    # The parent reads the baseline on a kill.
    bench_util.write_json(out, result)

    cluster = None
    t = time.perf_counter()
    try:
        cluster = partition(edge_index, spec['num_parts'],
                            method=spec['method'], num_nodes=num_nodes,
                            seed=spec['seed'], **spec['kwargs'])
        result['seconds'] = time.perf_counter() - t
        result['status'] = 'ok'
    except Exception as e:  # noqa: BLE001 (any failure is a result)
        why = f'{type(e).__name__}: {e}'[:500]
        if is_out_of_memory(e):
            result['status'], result['reason'] = 'OOM', why
        else:
            result['status'] = f'failed: {why}'
    result['peak_rss_bytes'] = peak_rss()
    result['peak_over_baseline_bytes'] = (result['peak_rss_bytes'] -
                                          result['baseline_rss_bytes'])
    if cluster is not None:
        try:  # One direction of every edge: half the report's memory.
            row, col = edge_index
            half = edge_index[:, row < col]
            del edge_index, graph, row, col
            report = partition_report(half, cluster, spec['num_parts'])
            result.update({k: v for k, v in report.as_dict().items()
                           if k not in ('num_nodes', 'num_edges')})
            result['sizes'] = report.sizes.tolist()
        except Exception as e:  # noqa: BLE001
            result['report_error'] = f'{type(e).__name__}: {e}'[:500]
    bench_util.write_json(out, result)


# Parent: one measurement #####################################################


def _tail(path: str, size: int = 2000) -> str:
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors='replace')
    except OSError:
        return ''


def measure(graph_path: str, method: str, num_parts: int, threads: int = 1,
            seed: int = 0, timeout: float = 1800,
            kwargs: Optional[Dict[str, Any]] = None,
            poll: float = 0.5) -> Dict[str, Any]:
    r"""Runs one partition call in a fresh subprocess and returns its
    measurements (see the module documentation); never raises for a failed,
    killed or timed-out run, but records it in :obj:`status`."""
    kwargs = dict(kwargs or {})
    with tempfile.TemporaryDirectory(prefix='partition-bench-') as tmp:
        result_path = osp.join(tmp, 'result.json')
        log_path = osp.join(tmp, 'worker.log')
        spec = dict(task='run', graph_path=graph_path, method=method,
                    num_parts=num_parts, threads=threads, seed=seed,
                    kwargs=kwargs, result=result_path)
        start = time.perf_counter()
        with open(log_path, 'wb') as log_file:
            proc = subprocess.Popen(
                [sys.executable, osp.abspath(__file__), '--worker',
                 json.dumps(spec)], stdout=log_file,
                stderr=subprocess.STDOUT, env=worker_env(threads),
                start_new_session=True)
            polled, timed_out, wait = 0, False, 0.02
            try:
                while True:
                    try:
                        proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    # VmHWM only grows (after the worker's reset), so the
                    # last reading is the best lower bound of the peak.
                    polled = peak_rss(proc.pid) or polled
                    wait = min(poll, 2 * wait)
                    if time.perf_counter() - start > timeout:
                        timed_out = True
                        polled = peak_rss(proc.pid) or polled
                        break
            finally:  # Time-out, or the parent interrupted: end the child.
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        elapsed = time.perf_counter() - start
        result: Dict[str, Any] = {}
        if osp.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        tail = _tail(log_path)

    rc = proc.returncode
    result.update(method=method, num_parts=num_parts, seed=seed,
                  method_kwargs=kwargs, graph_path=graph_path,
                  wall_seconds=elapsed, exit_status=rc)
    result.setdefault('threads', threads)
    if rc == 0 and result.get('status') not in (None, 'running'):
        pass  # The worker's own verdict: 'ok', 'OOM' or 'failed: ...'.
    else:
        peak = max(polled, result.get('peak_rss_bytes') or 0)
        result['peak_rss_bytes'] = peak
        result['peak_is_lower_bound'] = True
        if 'baseline_rss_bytes' in result:
            result['peak_over_baseline_bytes'] = (
                peak - result['baseline_rss_bytes'])
        if timed_out:
            result['status'] = 'timeout'
            result['reason'] = (f'timeout after {timeout:g} s, peak >= '
                                f'{peak / GiB:.2f} GiB')
        elif (rc == -signal.SIGKILL or 'MemoryError' in tail
              or 'bad_alloc' in tail):
            result['status'] = 'OOM'
            result['reason'] = (f'killed (exit status {rc}), presumably by '
                                f'the OOM killer, peak >= '
                                f'{peak / GiB:.2f} GiB')
        else:
            last = [line for line in tail.splitlines() if line.strip()]
            why = (f'signal {signal.Signals(-rc).name}' if rc < 0 else
                   f'exit status {rc}')
            result['status'] = f"failed: {why}: {last[-1] if last else ''}"
            result['status'] = result['status'][:500]
        result['log_tail'] = tail
    if result['status'] != 'ok' and 'log_tail' not in result:
        result['log_tail'] = tail
    return result


# Tables ######################################################################


def _fmt(value, spec: str, missing: str = '-') -> str:
    return missing if value is None else format(value, spec)


def _seconds(r: Dict[str, Any]) -> str:
    if r['status'] == 'ok':
        return f"{r['seconds']:.2f}"
    if r['status'] == 'timeout':
        return f">{r.get('timeout', r['wall_seconds']):.0f}"
    return '-'


def _gib(r: Dict[str, Any], key: str = 'peak_rss_bytes') -> str:
    value = r.get(key)
    if value is None:
        return '-'
    bound = '≥' if r.get('peak_is_lower_bound') else ''
    return f'{bound}{value / GiB:.3f}'


def _short_status(r: Dict[str, Any]) -> str:
    status = r['status']
    if status in ('timeout', 'OOM') and r.get('reason'):
        return f"{status} ({r['reason']})"
    return status.replace('|', '/')


def _method_label(r: Dict[str, Any]) -> str:
    kw = {k: v for k, v in (r.get('method_kwargs') or {}).items()
          if k != 'verbose'}
    if not kw:
        return r['method']
    return f"{r['method']} ({', '.join(f'{k}={v}' for k, v in kw.items())})"


def _graph_order(name: str) -> Tuple[int, float, str]:
    if is_rmat(name):
        return (1, rmat_edges(name), name)
    order = list(REAL_GRAPHS)
    return (0, order.index(name) if name in order else len(order), name)


def _method_order(r: Dict[str, Any]):
    m = r['method']
    return (METHODS.index(m) if m in METHODS else len(METHODS), m,
            r['num_parts'], r.get('threads', 1), _method_label(r))


def write_table(jsonl: str, path: str) -> str:
    r"""The tables of the runs in :obj:`jsonl`, and the GAS accuracy of the
    small benchmark's runs in ``partition_gas.jsonl`` beside it."""
    runs = bench_util.read_jsonl(jsonl)
    gas = bench_util.read_jsonl(osp.join(osp.dirname(jsonl),
                                         'partition_gas.jsonl'))
    by_graph: Dict[str, List[Dict[str, Any]]] = {}
    for r in runs:
        by_graph.setdefault(r['graph'], []).append(r)
    commits = sorted({str(r.get('commit', 'unknown'))[:10] for r in runs})
    lines = [
        f"Commit(s): {', '.join(commits) or '-'}. Every run is a fresh "
        'process that loads the cached graph; *seconds* is the '
        '`partition(...)` call alone; *peak RSS* is the peak resident '
        'memory of that process while partitioning (the loaded graph '
        'included), *over graph* the peak minus the RSS after loading. EC: '
        'fraction of undirected edges cut; BAL: the largest number of '
        'edges of a part over |E|/K; STD: standard deviation of the part '
        'sizes (nodes). `≥`: a lower bound, polled from a run that did not '
        'finish.', '']
    for graph in sorted(by_graph, key=_graph_order):
        rs = sorted(by_graph[graph], key=_method_order)
        first = rs[0]
        lines += [f"## {graph}: {first['num_nodes']:,} nodes, "
                  f"{first['num_edges']:,} undirected edges", '']
        rows = []
        for r in rs:
            ok = r['status'] == 'ok'
            rows.append([
                _method_label(r), r['num_parts'], r.get('threads', '-'),
                _seconds(r), _gib(r), _gib(r, 'peak_over_baseline_bytes'),
                _fmt(r.get('edge_cut') if ok else None, '.4f'),
                _fmt(r.get('balance') if ok else None, '.3f'),
                _fmt(r.get('size_std') if ok else None, '.1f'),
                _short_status(r)])
        lines += bench_util.markdown_table(
            ['method', 'K', 'threads', 'seconds', 'peak RSS (GiB)',
             'over graph (GiB)', 'EC', 'BAL', 'STD', 'status'], rows)
        lines.append('')
    accuracy = accuracy_table(gas)
    lines += scaling_tables(runs) + quality_table(runs) + accuracy
    commands = bench_util.commands(runs)
    if accuracy:
        commands += bench_util.commands(gas)
    return bench_util.write_markdown(
        path, 'Graph partitioning: METIS, LPMetis and random parts',
        commands, lines)


def _pick(runs, graph: str, method: str, num_parts: Optional[int] = None,
          threads: Optional[int] = None) -> Optional[Dict[str, Any]]:
    r"""The run of :obj:`method` (default arguments first) on :obj:`graph`."""
    rs = [r for r in runs if r['graph'] == graph and r['method'] == method
          and (num_parts is None or r['num_parts'] == num_parts)
          and (threads is None or r.get('threads') == threads)]
    rs.sort(key=lambda r: (bool(_method_label(r) != method), r['seed']))
    return rs[0] if rs else None


def scaling_tables(runs) -> List[str]:
    synthetic = sorted({r['graph'] for r in runs if is_rmat(r['graph'])},
                       key=_graph_order)
    lp = {g: _pick(runs, g, 'lpmetis') for g in synthetic}
    lp = {g: r for g, r in lp.items() if r is not None}
    if not lp:
        return []
    lines = ['## LPMetis scaling on R-MAT graphs', '',
             'Seconds of LPMetis per doubling of the edges between '
             'consecutive sizes (and from the smallest to the largest), '
             '(t2 / t1) ^ (1 / log2(E2 / E1)): 2.0 is linear; the bar is '
             f'≤ {SCALING_BAR}. METIS alongside where both runs finished.',
             '', '| from | to | E2 / E1 | LPMetis s (from → to) | '
             'LPMetis per 2× | METIS per 2× | bar |',
             '|---|---|---|---|---|---|---|']
    names = list(lp)
    pairs = list(zip(names, names[1:]))
    if len(names) > 2:  # And over the whole range:
        pairs.append((names[0], names[-1]))
    for g1, g2 in pairs:
        r1, r2 = lp[g1], lp[g2]
        ratio = r2['num_edges'] / r1['num_edges']
        per = '-'
        bar = '-'
        if r1['status'] == 'ok' and r2['status'] == 'ok' and ratio > 1:
            value = (r2['seconds'] / r1['seconds'])**(1 / math.log2(ratio))
            per = f'{value:.2f}'
            bar = 'pass' if value <= SCALING_BAR else 'FAIL'
        m1 = _pick(runs, g1, 'metis', r1['num_parts'], r1.get('threads'))
        m2 = _pick(runs, g2, 'metis', r2['num_parts'], r2.get('threads'))
        metis_per = '-'
        if (m1 and m2 and m1['status'] == 'ok' and m2['status'] == 'ok'
                and ratio > 1):
            value = (m2['seconds'] / m1['seconds'])**(1 / math.log2(ratio))
            metis_per = f'{value:.2f}'
        lines.append(f'| {g1} | {g2} | {ratio:.2f} | {_seconds(r1)} → '
                     f'{_seconds(r2)} | {per} | {metis_per} | {bar} |')
    lines += ['', 'Peak memory of LPMetis against METIS at every size (same '
              'K and threads); *over graph*: the peak minus the RSS of the '
              'loaded graph, the partitioner\'s own memory. Where METIS did '
              'not finish, its peak is a lower bound and the ratio an upper '
              'bound (≤).', '',
              '| graph | K | LPMetis peak (GiB) | METIS peak (GiB) | '
              'LPMetis / METIS | LPMetis over graph | METIS over graph | '
              'LPMetis / METIS over graph |', '|---|---|---|---|---|---|---|'
              '---|']
    for g, r in lp.items():
        m = _pick(runs, g, 'metis', r['num_parts'], r.get('threads'))
        cells = ['-'] * 2
        if m is not None:
            bound = '≤' if m.get('peak_is_lower_bound') else ''
            if r.get('peak_is_lower_bound'):
                bound = '?'  # Both bounds: no ratio.
            for i, key in enumerate(('peak_rss_bytes',
                                     'peak_over_baseline_bytes')):
                if r.get(key) and m.get(key) and bound != '?':
                    cells[i] = f'{bound}{r[key] / m[key]:.2f}'
        lines.append(f"| {g} | {r['num_parts']} | {_gib(r)} | "
                     f"{_gib(m) if m else '-'} | {cells[0]} | "
                     f"{_gib(r, 'peak_over_baseline_bytes')} | "
                     f"{_gib(m, 'peak_over_baseline_bytes') if m else '-'} | "
                     f"{cells[1]} |")
    return lines + ['']


def _ec(r: Dict[str, Any]) -> str:
    return f"{r['edge_cut']:.4f}" if r['status'] == 'ok' else r['status']


ACCURACY_BAR = 0.7  # Points of test accuracy, LPMetis against METIS.


def accuracy_table(gas: List[Dict[str, Any]]) -> List[str]:
    r"""GAS test accuracy with METIS against LPMetis partitions, from the
    small benchmark's runs :obj:`gas` (``benchmark/small/run.py
    --partition``)."""
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for r in gas:
        if r['mode'] == 'gas' and r['partition'] in ('metis', 'lpmetis'):
            results.setdefault(r['config'], {}).setdefault(
                r['partition'], []).append(r)
    rows = []
    for config, by_method in sorted(results.items()):
        if len(by_method) < 2:
            continue
        m, lp = by_method['metis'], by_method['lpmetis']
        seeds = sorted({g['seed'] for g in m} & {g['seed'] for g in lp})
        if not seeds:
            continue
        acc = {
            key: [100 * g['test'] for g in rs if g['seed'] in seeds]
            for key, rs in (('metis', m), ('lpmetis', lp))
        }
        mean = {k: statistics.mean(v) for k, v in acc.items()}
        std = {k: statistics.stdev(v) if len(v) > 1 else 0.0
               for k, v in acc.items()}
        diff = mean['lpmetis'] - mean['metis']
        bar = 'pass' if abs(diff) <= ACCURACY_BAR else 'FAIL'
        rows.append(f"| {m[0]['model']} | {m[0]['dataset']} | "
                    f"{len(seeds)} | "
                    f"{mean['metis']:.2f} ± {std['metis']:.2f} | "
                    f"{mean['lpmetis']:.2f} ± {std['lpmetis']:.2f} | "
                    f"{diff:+.2f} | {bar} |")
    if not rows:
        return []
    return [
        '## GAS accuracy with METIS and LPMetis partitions', '',
        'GCN with GAS, the reference hyperparameters and number of parts of '
        '`benchmark/small/configs/`, the same seeds for both partitions '
        '(LPMetis seeded with the run seed); test accuracy (%) at the best '
        f'validation epoch. The bar: within {ACCURACY_BAR} points.', '',
        '| model | dataset | seeds | METIS | LPMetis | LPMetis − METIS | '
        'bar |', '|---|---|---|---|---|---|---|'] + rows + ['']


def quality_table(runs) -> List[str]:
    rows = []
    for g in sorted({r['graph'] for r in runs if not is_rmat(r['graph'])},
                    key=_graph_order):
        lp = _pick(runs, g, 'lpmetis')
        if lp is None:
            continue
        m = _pick(runs, g, 'metis', lp['num_parts'])
        if m is None:
            continue
        ratio, bar = '-', '-'
        if lp['status'] == 'ok' and m['status'] == 'ok' and m['edge_cut']:
            value = lp['edge_cut'] / m['edge_cut']
            ratio = f'{value:.2f}'
            bar = 'pass' if value <= EC_BAR else 'FAIL'
        rows.append(f"| {g} | {lp['num_parts']} | {_ec(m)} | {_ec(lp)} | "
                    f"{ratio} | {bar} |")
    if not rows:
        return []
    return ['## LPMetis edge cut against METIS on real graphs', '',
            f'The bar is LPMetis EC / METIS EC ≤ {EC_BAR}.', '',
            '| graph | K | METIS EC | LPMetis EC | LPMetis / METIS | bar |',
            '|---|---|---|---|---|---|'] + rows + ['']


# Main ########################################################################


def parse_kwargs(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got '{item}'")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def run_name(graph: str, method: str, num_parts: int, threads: int,
             seed: int, kwargs: Dict[str, Any]) -> str:
    extra = ''.join(f'_{k}{v}' for k, v in sorted(kwargs.items())
                    if k != 'verbose')
    extra = ''.join(ch if ch.isalnum() or ch in '._-' else '-'
                    for ch in extra)
    return f'{graph}_{method}{extra}_k{num_parts}_t{threads}_s{seed}'


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', default='data')
    p.add_argument('--cache-dir', default=None,
                   help='cached graphs (default: ROOT/partition_cache)')
    p.add_argument('--graphs', nargs='*', default=None,
                   help='names to run (default: computers, cs and rmat<E> '
                   'for every --edges)')
    p.add_argument('--edges', nargs='*', type=float,
                   default=[1, 10, 50, 100],
                   help='R-MAT sizes in millions of undirected edges')
    p.add_argument('--methods', nargs='*', default=list(METHODS),
                   choices=list(METHODS) + ['contiguous'])
    p.add_argument('--real-parts', type=int, default=40)
    p.add_argument('--synthetic-parts', type=int, default=64)
    p.add_argument('--parts', nargs='*', default=[], metavar='GRAPH=K',
                   help='per-graph K, e.g. computers=40 rmat100=128')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the R-MAT graphs, LPMetis and random parts')
    p.add_argument('--edge-factor', type=int, default=16)
    p.add_argument('--timeout', type=float, default=1800,
                   help='seconds per run')
    p.add_argument('--lpmetis-kwargs', nargs='*', default=[],
                   metavar='KEY=VALUE', help='e.g. rounds=3 p_ratio=0.5')
    p.add_argument('--metis-kwargs', nargs='*', default=[],
                   metavar='KEY=VALUE')
    bench_util.add_output_options(p, 'partition')
    p.add_argument('--prepare-only', action='store_true',
                   help='only build the cached graphs')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.worker is not None:
        worker(json.loads(args.worker))
        return
    if args.cache_dir is None:
        args.cache_dir = osp.join(args.root, 'partition_cache')
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        run_all(args, bench_util.command_line(__file__, argv), jsonl)
    print(write_table(jsonl, args.out))


def run_key(r: Dict[str, Any]) -> str:
    r"""What tells runs apart: graph, method and its arguments, K, threads
    and seed."""
    return run_name(r['graph'], r['method'], r['num_parts'],
                    r.get('threads', 1), r['seed'],
                    r.get('method_kwargs') or {})


def run_all(args, command: str, jsonl: str):
    graphs = args.graphs
    if graphs is None:
        graphs = list(REAL_GRAPHS) + [rmat_name(e) for e in args.edges]
    for g in graphs:
        if g not in REAL_GRAPHS and not is_rmat(g):
            raise SystemExit(f"unknown graph '{g}': pass computers, cs or "
                             f"rmat<millions of edges>")
    parts = {k: int(v) for k, v in parse_kwargs(args.parts).items()}
    method_kwargs = dict(metis=dict(verbose=False),
                         lpmetis=parse_kwargs(args.lpmetis_kwargs))
    method_kwargs['metis'].update(parse_kwargs(args.metis_kwargs))
    known = bench_util.provenance()
    done = {run_key(r) for r in bench_util.read_jsonl(jsonl)}
    for graph in graphs:
        path = ensure_graph(graph, args)
        if path is None or args.prepare_only:
            continue
        num_parts = parts.get(graph, args.synthetic_parts if is_rmat(graph)
                              else args.real_parts)
        for method in args.methods:
            kwargs = method_kwargs.get(method, {})
            name = run_name(graph, method, num_parts, args.threads,
                            args.seed, kwargs)
            if args.skip_done and name in done:
                log.info('%s %s K=%d: done, skipped', graph, method,
                         num_parts)
                continue
            r = measure(path, method, num_parts, args.threads, args.seed,
                        args.timeout, kwargs)
            r.update(graph=graph, command=command, timeout=args.timeout,
                     cpu_count=os.cpu_count(), **known)
            if 'edge_cut' not in r:
                r.setdefault('edge_cut', None)
                r.setdefault('balance', None)
                r.setdefault('size_std', None)
            if 'num_edges' not in r:  # The worker died before loading.
                r.update(graph_meta(path))
            r.setdefault('seconds', None)
            r.setdefault('baseline_rss_bytes', None)
            # A run measured again replaces its earlier record.
            bench_util.drop_jsonl(jsonl, lambda old: run_key(old) == name)
            bench_util.append_jsonl(jsonl, r)
            log.info('%s %s K=%d: %s s, peak RSS %s GiB (+%s over the '
                     'graph), EC %s, BAL %s, STD %s [%s]', graph,
                     _method_label(r), num_parts, _seconds(r), _gib(r),
                     _gib(r, 'peak_over_baseline_bytes'),
                     _fmt(r['edge_cut'], '.4f'), _fmt(r['balance'], '.3f'),
                     _fmt(r['size_std'], '.1f'), _short_status(r))


if __name__ == '__main__':
    main()
