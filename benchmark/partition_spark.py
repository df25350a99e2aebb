r"""LPMetis on Spark against LPMetis in-process, side by side on R-MAT
graphs: the seconds of the partition call, the peak memory of the processes
doing it, the quality of the parts (EC, BAL, STD, see
:func:`torch_autoscale.partition.partition_report`), whether both give the
same part ids (they must), and the size of the coarse graph after every
round of the Spark run, the only part that must fit on the driver.

    python benchmark/partition_spark.py --root data
    python benchmark/partition_spark.py --edges 0.1 --parts 16 --skip-done
    python benchmark/partition_spark.py --table-only

The R-MAT graphs are :mod:`partition`'s (``benchmark/partition.py``): the
same names (``rmat<E>`` for ``E`` million undirected edges), generator and
cache under ``--cache-dir``. Every graph is also written once, beside its
cache file, as a Parquet edge list (columns ``src``, ``dst``, one row per
undirected edge), which is what the Spark engine reads.

Every measurement runs in a fresh subprocess:

* ``torch``: loads the cached graph, resets the peak-RSS mark and times
  ``partition(edge_index, K, method='lpmetis', seed=...)`` with
  ``--cores`` intra-op threads; the peak RSS is that process' (the loaded
  graph included).
* ``spark``: starts a session (``local[--cores]``, Spark's UI and adaptive
  execution off, ``--shuffle-partitions``, ``--driver-memory``; its start
  is timed apart), resets the peak-RSS mark and times
  :func:`~torch_autoscale.partition.lpmetis_spark.lpmetis_spark` on the
  Parquet edge list plus
  :func:`~torch_autoscale.partition.lpmetis_spark.read_parts` (the tensor
  the library takes). Memory is read for the Python driver process and,
  apart, for its JVM child (driver and executor at once in local mode):
  the JVM's peak RSS (``VmHWM``, its whole life) and its anonymous memory
  sampled every 0.2 s. The log records of
  ``torch_autoscale.partition.lpmetis_spark`` are captured for the coarse
  graph's nodes and edges after every round.

Both record a SHA-256 of their part ids, which the table compares, and
the CPU seconds every other process of the machine used during the call
(``/proc/stat``), which shows a measurement disturbed by other work. Each
measurement is appended to the JSONL file beside the table (``--out``) as
soon as it ends (``--skip-done`` resumes); the table is rebuilt from all of
them (``--table-only`` only rebuilds).
"""
import argparse
import hashlib
import json
import logging
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import bench_util
import partition as pbench
from bench_util import GiB, current_rss, peak_rss, reset_peak_rss

ENGINES = ('torch', 'spark')
SPARK_LOGGER = 'torch_autoscale.partition.lpmetis_spark'
ROUND_PREFIX = 'LPMetis (Spark) round'
SPLIT_PREFIX = 'LPMetis (Spark) split'
log = logging.getLogger('partition_spark')

Record = Dict[str, Any]


# Worker ######################################################################


def parquet_path(graph_path: str) -> str:
    r"""The Parquet edge list beside the cached graph :obj:`graph_path`."""
    return graph_path[:-len('.pt')] + '_edges.parquet'


def spark_session(spec: Dict[str, Any]):
    r"""The benchmark's local Spark session."""
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master(f"local[{spec['cores']}]")
             .appName('partition_spark-benchmark')
             .config('spark.ui.enabled', 'false')
             .config('spark.sql.adaptive.enabled', 'false')
             .config('spark.sql.shuffle.partitions',
                     str(spec['shuffle_partitions']))
             .config('spark.driver.memory', spec['driver_memory'])
             .getOrCreate())
    spark.sparkContext.setLogLevel('ERROR')
    logging.getLogger('py4j').setLevel(logging.WARNING)
    return spark


def _children() -> Dict[int, List[int]]:
    out: Dict[int, List[int]] = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        # The command may hold spaces: the parent id follows its ')'.
        ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def jvm_pids(pid: Optional[int] = None) -> List[int]:
    r"""The Java processes among the descendants of :obj:`pid` (default:
    this process)."""
    children, out = _children(), []
    todo = [os.getpid() if pid is None else pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                with open(f'/proc/{child}/comm') as f:
                    if f.read().strip() == 'java':
                        out.append(child)
            except OSError:
                pass
    return out


class RoundLog(logging.Handler):
    r"""Keeps the log records of the Spark engine: the coarse graph after
    every round, and every message."""
    def __init__(self):
        super().__init__(logging.INFO)
        self.rounds: List[Record] = []
        self.split: Optional[Record] = None
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if str(record.msg).startswith(ROUND_PREFIX):
            r, nodes, edges, seconds = record.args
            self.rounds.append(dict(round=int(r), nodes=int(nodes),
                                    edges=int(edges),
                                    seconds=float(seconds)))
        elif str(record.msg).startswith(SPLIT_PREFIX):
            _, _, seconds, nodes = record.args
            self.split = dict(nodes=int(nodes), seconds=float(seconds))


def cpu_seconds(pid: Any = 'self') -> Optional[float]:
    r"""The CPU seconds (user and system) a process has used so far."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def machine_cpu() -> Optional[List[float]]:
    r"""The busy and the stolen CPU seconds of the whole machine so far,
    all cores together (``/proc/stat``)."""
    try:
        with open('/proc/stat') as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _, _, irq, softirq, steal = ticks
    hz = os.sysconf('SC_CLK_TCK')
    return [(user + nice + system + irq + softirq) / hz, steal / hz]


def record_others(result: Record, machine: Optional[List[float]],
                  own: Optional[float]) -> None:
    r"""Records the CPU seconds that other processes of the machine used
    since :obj:`machine` (:func:`machine_cpu`), this measurement's
    :obj:`own` seconds aside, and those the hypervisor stole: what tells a
    measurement on a busy machine from one on a quiet one."""
    now = machine_cpu()
    if machine is None or now is None or own is None:
        return
    result.update(other_cpu_seconds=max(now[0] - machine[0] - own, 0.0),
                  steal_seconds=now[1] - machine[1])


def parts_digest(cluster) -> str:
    r"""The SHA-256 of the part ids as :obj:`int64`."""
    return hashlib.sha256(
        cluster.long().contiguous().numpy().tobytes()).hexdigest()


def _report(graph_path: str, cluster, num_parts: int) -> Record:
    from torch_autoscale.partition import partition_report
    edge_index = pbench.load_graph(graph_path)['edge_index']
    half = edge_index[:, edge_index[0] < edge_index[1]]
    del edge_index
    report = partition_report(half, cluster, num_parts)
    out = {k: v for k, v in report.as_dict().items()
           if k not in ('num_nodes', 'num_edges')}
    out['sizes'] = report.sizes.tolist()
    return out


def write_parquet(spec: Dict[str, Any]) -> None:
    r"""Writes the cached graph's undirected edges (one row each) as the
    Parquet edge list the Spark runs read, through a CSV file."""
    import numpy as np
    graph = pbench.load_graph(spec['graph_path'])
    edge_index = graph['edge_index']
    half = edge_index[:, edge_index[0] < edge_index[1]].t().numpy()
    out = parquet_path(spec['graph_path'])
    tmp = out + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    csv = out + '.csv'
    np.savetxt(csv, half, fmt='%d', delimiter=',', header='src,dst',
               comments='')
    try:
        spark = spark_session(spec)
        spark.read.csv(csv, header=True, schema='src long, dst long') \
            .write.parquet(tmp)
        spark.stop()
        os.rename(tmp, out)
    finally:
        os.remove(csv)
        shutil.rmtree(tmp, ignore_errors=True)


def run_torch(spec: Dict[str, Any], result: Record) -> None:
    import torch

    from torch_autoscale.partition import partition
    t = time.perf_counter()
    graph = pbench.load_graph(spec['graph_path'])
    edge_index, num_nodes = graph['edge_index'], graph['num_nodes']
    del graph
    result.update(load_seconds=time.perf_counter() - t,
                  threads=torch.get_num_threads(),
                  baseline_rss_bytes=current_rss(),
                  peak_reset=reset_peak_rss())
    bench_util.write_json(spec['result'], result)
    cpu, machine = cpu_seconds(), machine_cpu()
    t = time.perf_counter()
    cluster = partition(edge_index, spec['num_parts'], method='lpmetis',
                        num_nodes=num_nodes, seed=spec['seed'])
    result['seconds'] = time.perf_counter() - t
    if cpu is not None:
        result['cpu_seconds'] = cpu_seconds() - cpu
        record_others(result, machine, result['cpu_seconds'])
    result['peak_rss_bytes'] = peak_rss()
    del edge_index
    result['parts_sha256'] = parts_digest(cluster)
    result.update(_report(spec['graph_path'], cluster, spec['num_parts']))
    result['status'] = 'ok'


def run_spark(spec: Dict[str, Any], result: Record) -> None:
    from torch_autoscale.partition import lpmetis_spark, read_parts
    handler = RoundLog()
    logger = logging.getLogger(SPARK_LOGGER)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    t = time.perf_counter()
    spark = spark_session(spec)
    spark.range(1).count()  # The JVM's first job, outside the timing.
    result['session_seconds'] = time.perf_counter() - t
    jvms = jvm_pids()
    if len(jvms) != 1:
        raise RuntimeError(f'expected one JVM below the driver, found '
                           f'{jvms}')
    jvm = jvms[0]
    result.update(jvm_baseline_rss_bytes=1024 * (
        bench_util.status_kib(jvm, 'VmRSS') or 0),
        baseline_rss_bytes=current_rss(), peak_reset=reset_peak_rss())
    bench_util.write_json(spec['result'], result)
    sampler = bench_util.RssSampler(jvm)
    cpu, machine = (cpu_seconds(jvm), cpu_seconds()), machine_cpu()
    t = time.perf_counter()
    parts = lpmetis_spark(parquet_path(spec['graph_path']),
                          spec['num_parts'], spec['num_nodes'], spark,
                          seed=spec['seed'])
    result['lpmetis_seconds'] = time.perf_counter() - t
    cluster = read_parts(parts, spec['num_nodes'], spec['num_parts'])
    result['seconds'] = time.perf_counter() - t
    result['peak_rss_bytes'] = peak_rss()
    sampler.stop()
    if None not in cpu:
        result.update(jvm_cpu_seconds=cpu_seconds(jvm) - cpu[0],
                      cpu_seconds=cpu_seconds() - cpu[1])
        record_others(result, machine,
                      result['jvm_cpu_seconds'] + result['cpu_seconds'])
    result.update(jvm_pid_count=len(jvms),
                  jvm_peak_rss_bytes=peak_rss(jvm),
                  jvm_peak_anon_bytes=sampler.peak_anon,
                  jvm_peak_file_bytes=sampler.peak_file,
                  rounds=handler.rounds, split=handler.split,
                  spark_log=handler.messages)
    spark.stop()
    logger.removeHandler(handler)
    result['parts_sha256'] = parts_digest(cluster)
    result.update(_report(spec['graph_path'], cluster, spec['num_parts']))
    result['status'] = 'ok'


def worker(spec: Dict[str, Any]) -> None:
    r"""The subprocess side: writes a graph's Parquet edge list
    (:obj:`task="parquet"`) or measures one engine (:obj:`task="run"`)."""
    import torch
    torch.set_num_threads(int(spec['cores']))
    if spec['task'] == 'parquet':
        write_parquet(spec)
        return
    result: Record = dict(status='running')
    try:
        (run_spark if spec['engine'] == 'spark' else run_torch)(spec, result)
    except Exception as e:  # noqa: BLE001 (any failure is a result)
        why = f'{type(e).__name__}: {e}'[:500]
        result['status'] = ('OOM' if pbench.is_out_of_memory(e) else
                            f'failed: {why}')
        result['reason'] = why
        result.setdefault('peak_rss_bytes', peak_rss())
    bench_util.write_json(spec['result'], result)


# Parent ######################################################################


def _spawn(spec: Dict[str, Any], log_path: str, timeout: float):
    r"""Runs a worker in its own session (its JVM included) and returns its
    exit status, or :obj:`None` after :obj:`timeout` seconds (killed)."""
    with open(log_path, 'wb') as out:
        proc = subprocess.Popen(
            [sys.executable, osp.abspath(__file__), '--worker',
             json.dumps(spec)], stdout=out, stderr=subprocess.STDOUT,
            env=pbench.worker_env(spec['cores']), start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _spec(args, **kw) -> Dict[str, Any]:
    return dict(cores=args.cores, shuffle_partitions=args.shuffle_partitions,
                driver_memory=args.driver_memory, **kw)


def ensure_parquet(graph_path: str, args) -> Optional[str]:
    r"""The Parquet edge list of a cached graph, written in a subprocess if
    missing; :obj:`None` (with a message) if that fails."""
    path = parquet_path(graph_path)
    if osp.exists(path):
        return path
    log.info('Writing %s', path)
    with tempfile.TemporaryDirectory(prefix='partition-spark-') as tmp:
        log_path = osp.join(tmp, 'worker.log')
        rc = _spawn(_spec(args, task='parquet', graph_path=graph_path),
                    log_path, args.timeout)
        if rc != 0 or not osp.exists(path):
            log.error('Writing %s failed (exit status %s): %s', path, rc,
                      pbench._tail(log_path))
            return None
    return path


def measure(args, graph_path: str, engine: str, num_parts: int,
            meta: Record) -> Record:
    r"""One engine on one graph in a fresh subprocess; never raises for a
    failed, killed or timed-out run, but records it in :obj:`status`."""
    with tempfile.TemporaryDirectory(prefix='partition-spark-') as tmp:
        result_path = osp.join(tmp, 'result.json')
        log_path = osp.join(tmp, 'worker.log')
        spec = _spec(args, task='run', engine=engine,
                     graph_path=graph_path, num_parts=num_parts,
                     num_nodes=meta['num_nodes'], seed=args.seed,
                     result=result_path)
        start = time.perf_counter()
        rc = _spawn(spec, log_path, args.timeout)
        elapsed = time.perf_counter() - start
        result: Record = {}
        if osp.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        tail = pbench._tail(log_path)
    result.update(wall_seconds=elapsed, exit_status=rc)
    if rc is None:
        result['status'] = 'timeout'
        result['reason'] = f'timeout after {args.timeout:g} s'
    elif rc != 0 or result.get('status') in (None, 'running'):
        result['status'] = ('OOM' if rc == -signal.SIGKILL else
                            f'failed: exit status {rc}')
    if result['status'] != 'ok':
        result['log_tail'] = tail
    return result


def run_key(r: Record) -> tuple:
    r"""What tells runs apart."""
    spark = ((r.get('shuffle_partitions'), r.get('driver_memory'))
             if r['engine'] == 'spark' else ())
    return (r['graph'], r['engine'], r['num_parts'], r['seed'],
            r.get('cores')) + spark


def run_all(args, command: str, jsonl: str) -> None:
    graphs = args.graphs or [pbench.rmat_name(e) for e in args.edges]
    for g in graphs:
        if not pbench.is_rmat(g):
            raise SystemExit(f"unknown graph '{g}': pass rmat<millions of "
                             f"edges>, e.g. rmat0.1")
    known = bench_util.provenance()
    done = {run_key(r) for r in bench_util.read_jsonl(jsonl)}
    for graph in graphs:
        path = pbench.ensure_graph(graph, args)
        if path is None or ensure_parquet(path, args) is None:
            continue
        meta = pbench.graph_meta(path)
        for engine in args.engines:
            record = dict(graph=graph, engine=engine,
                          num_parts=args.num_parts, seed=args.seed,
                          cores=args.cores, **meta)
            if engine == 'spark':
                record.update(master=f'local[{args.cores}]',
                              shuffle_partitions=args.shuffle_partitions,
                              driver_memory=args.driver_memory)
            key = run_key(record)
            if args.skip_done and key in done:
                log.info('%s %s K=%d: done, skipped', graph, engine,
                         args.num_parts)
                continue
            record.update(measure(args, path, engine, args.num_parts,
                                  meta))
            record.update(command=command, timeout=args.timeout,
                          cpu_count=os.cpu_count(), **known)
            bench_util.drop_jsonl(jsonl, lambda old: run_key(old) == key)
            bench_util.append_jsonl(jsonl, record)
            log.info('%s %s K=%d: %s s, %s', graph, engine, args.num_parts,
                     _fmt(record.get('seconds'), '.2f'), record['status'])


# Table #######################################################################


def _fmt(value, spec: str, missing: str = '-') -> str:
    return missing if value is None else format(value, spec)


def _gib(value) -> str:
    return _fmt(None if value is None else value / GiB, '.3f')


def _status(r: Record) -> str:
    return str(r['status']).replace('|', '/').replace('\n', ' ')[:200]


def table(records: List[Record]):
    by_graph: Dict[str, List[Record]] = {}
    for r in records:
        by_graph.setdefault(r['graph'], []).append(r)
    commits = sorted({str(r.get('commit', 'unknown'))[:10]
                      for r in records})
    body = [
        f"Commit(s): {', '.join(commits) or '-'}. Every run is a fresh "
        'process. *seconds*: the partition call alone (Spark: '
        '`lpmetis_spark` on the Parquet edge list plus `read_parts`, '
        'without starting the session, in *session s*); *CPU s*: the '
        'user and system seconds of the process calling it and of '
        "Spark's JVM during that call; *others' CPU s*: those of every "
        'other process of the machine meanwhile (`/proc/stat`; near 0 on '
        'a quiet machine). *Python peak*: '
        'the peak RSS of the process calling it (in-process: the loaded '
        'graph included; Spark: the driver); *JVM peak*: the peak RSS of '
        "Spark's JVM (driver and executor in local mode) over its whole "
        'life, *JVM anon*: its anonymous memory, sampled every 0.2 s. EC: '
        'fraction of undirected edges cut; BAL: the largest number of '
        'edges of a part over |E|/K; STD: standard deviation of the part '
        'sizes (nodes). *same parts*: the part ids equal those of the '
        'in-process run, node for node (SHA-256).', '']
    order = {e: i for i, e in enumerate(ENGINES)}
    for graph in sorted(by_graph, key=pbench.rmat_edges):
        rs = sorted(by_graph[graph], key=lambda r: (
            r['num_parts'], r['seed'], order.get(r['engine'], 9)))
        first = rs[0]
        body += [f"## {graph}: {first['num_nodes']:,} nodes, "
                 f"{first['num_edges']:,} undirected edges", '']
        rows = []
        for r in rs:
            ok = r['status'] == 'ok'
            spark = r['engine'] == 'spark'
            same = '-'
            ref = [o for o in rs if o['engine'] == 'torch'
                   and o['num_parts'] == r['num_parts']
                   and o['seed'] == r['seed'] and o['status'] == 'ok']
            if spark and ok and ref:
                same = ('yes' if r['parts_sha256'] == ref[0]['parts_sha256']
                        else 'NO')
            engine = (f"Spark {r.get('master')}, "
                      f"{r.get('shuffle_partitions')} shuffle partitions, "
                      f"driver {r.get('driver_memory')}" if spark else
                      f"in-process, {r.get('threads', r.get('cores'))} "
                      f"threads")
            rows.append([
                engine, r['num_parts'], r['seed'],
                _fmt(r.get('seconds') if ok else None, '.2f'),
                _fmt(r.get('cpu_seconds') if ok else None, '.2f'),
                _fmt(r.get('jvm_cpu_seconds') if ok else None, '.2f'),
                _fmt(r.get('other_cpu_seconds') if ok else None, '.2f'),
                _fmt(r.get('session_seconds'), '.2f'),
                _gib(r.get('peak_rss_bytes')),
                _gib(r.get('jvm_peak_rss_bytes')),
                _gib(r.get('jvm_peak_anon_bytes')),
                _fmt(r.get('edge_cut') if ok else None, '.4f'),
                _fmt(r.get('balance') if ok else None, '.3f'),
                _fmt(r.get('size_std') if ok else None, '.1f'),
                same, _status(r)])
        body += bench_util.markdown_table(
            ['engine', 'K', 'seed', 'seconds', 'Python CPU s', 'JVM CPU s',
             "others' CPU s", 'session s',
             'Python peak (GiB)', 'JVM peak (GiB)', 'JVM anon (GiB)', 'EC',
             'BAL', 'STD', 'same parts', 'status'], rows)
        body.append('')
        for r in rs:
            if r['engine'] != 'spark' or not (r.get('rounds')
                                              or r.get('split')):
                continue
            body += [f"Coarse graph after every round of the Spark run "
                     f"(K={r['num_parts']}, seed {r['seed']}; round 0: the "
                     f"input graph; the last row: the nodes METIS split; "
                     f"seconds since the call began; a round that merges "
                     f"no nodes ends the coarsening and has no row):", '']
            rows = [[0, f"{r['num_nodes']:,}", f"{r['num_edges']:,}", '-']]
            rows += [[c['round'], f"{c['nodes']:,}", f"{c['edges']:,}",
                      f"{c['seconds']:.2f}"] for c in r['rounds']]
            if r.get('split'):
                rows.append(['METIS, refinement, done',
                             f"{r['split']['nodes']:,}", '-',
                             f"{r['split']['seconds']:.2f}"])
            body += bench_util.markdown_table(
                ['round', 'nodes', 'undirected edges', 'seconds'], rows)
            body.append('')
    return 'LPMetis on Spark against in-process LPMetis', body


# Main ########################################################################


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', default='data')
    p.add_argument('--cache-dir', default=None,
                   help="cached graphs, shared with partition.py "
                   "(default: ROOT/partition_cache)")
    p.add_argument('--edges', nargs='*', type=float, default=[0.1, 0.3, 1],
                   help='R-MAT sizes in millions of undirected edges')
    p.add_argument('--graphs', nargs='*', default=None,
                   help='R-MAT names to run instead, e.g. rmat0.1')
    p.add_argument('--engines', nargs='*', default=list(ENGINES),
                   choices=list(ENGINES))
    p.add_argument('--num-parts', type=int, default=64)
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the R-MAT graphs and of LPMetis')
    p.add_argument('--edge-factor', type=int, default=16)
    p.add_argument('--cores', type=int, default=2,
                   help='Spark master local[CORES]; in-process: threads')
    p.add_argument('--shuffle-partitions', type=int, default=4,
                   help='spark.sql.shuffle.partitions')
    p.add_argument('--driver-memory', default='4g',
                   help='spark.driver.memory')
    p.add_argument('--timeout', type=float, default=3600,
                   help='seconds per run')
    bench_util.add_output_options(p, 'partition_spark')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.worker is not None:
        worker(json.loads(args.worker))
        return
    if args.cache_dir is None:
        args.cache_dir = osp.join(args.root, 'partition_cache')
    args.threads = args.cores  # What partition.ensure_graph reads.
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        run_all(args, bench_util.command_line(__file__, argv), jsonl)
    bench_util.write_table(args.out, table)


if __name__ == '__main__':
    main()
