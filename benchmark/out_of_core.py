r"""GAS on graphs kept on disk, step by step, with bounded memory.

For every graph size, the steps of the out-of-core path run one after the
other, each in a fresh process: generate (a community graph as an edge list
and raw features, :func:`torch_autoscale.store.generate_edge_list`), ingest
(:func:`torch_autoscale.store.ingest_edge_list`), partition (label
propagation and METIS over the store, :func:`~torch_autoscale.store.
lpmetis_store` when available), permute (the store in cluster order,
:func:`torch_autoscale.store.permute_store`), one GAS epoch (GraphSAGE,
histories on disk) and layer-wise inference (outputs written to disk). For
each step: seconds, peak RSS of its process, and the bytes its process read
from and wrote to the block device (``getrusage``). Intermediates are
deleted as soon as the next step no longer needs them.

    python benchmark/out_of_core.py --sizes 1000000 2000000 4000000 \
        --workdir /path/on/a/large/disk
"""
import argparse
import json
import logging
import math
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

import bench_util

STEPS = ('generate', 'ingest', 'partition', 'permute', 'train', 'infer')
GiB = bench_util.GiB


# One step, in its own process ##############################################


def run_step(args) -> Dict[str, Any]:
    import torch

    from torch_autoscale import store as gs
    torch.set_num_threads(args.threads)
    w = args.workdir
    raw, store_dir, laid = (osp.join(w, 'raw'), osp.join(w, 'store'),
                            osp.join(w, 'laid_out'))
    out: Dict[str, Any] = {}
    if args.step == 'generate':
        os.makedirs(raw, exist_ok=True)
        gs.generate_edge_list(
            raw, args.size, community_size=args.community_size,
            avg_degree=args.avg_degree, num_features=args.features,
            num_classes=args.classes, locality=args.locality,
            seed=args.seed, progress=False)
    elif args.step == 'ingest':
        nodes = torch.load(osp.join(raw, 'nodes.pt'))
        x = torch.from_file(osp.join(raw, 'x.bin'), shared=False,
                            size=args.size * args.features,
                            dtype=torch.float16).view(args.size,
                                                      args.features)
        store = gs.ingest_edge_list(
            osp.join(raw, 'edges.bin'), store_dir, num_nodes=args.size,
            undirected=True, remove_self_loops=True,
            node_arrays=dict(x=x, **nodes), checksums=False,
            progress=False)
        out.update(num_edges=store.num_edges, store_bytes=store.nbytes)
        del x
        shutil.rmtree(raw)
    elif args.step == 'partition':
        store = gs.GraphStore(store_dir)
        if hasattr(gs, 'lpmetis_store'):
            # The coarse graph METIS splits: the last round LPMetis logs.
            rounds = []
            grab = logging.Handler(logging.INFO)
            grab.emit = lambda record: rounds.append(record.args) if str(
                record.msg).startswith('LPMetis round') else None
            lp_log = logging.getLogger('torch_autoscale.partition.lpmetis')
            lp_log.addHandler(grab)
            lp_log.setLevel(logging.INFO)
            kwargs = ({} if args.max_coarse_entries is None else dict(
                max_coarse_entries=args.max_coarse_entries))
            cluster = gs.lpmetis_store(store, args.parts, seed=args.seed,
                                       progress=False, **kwargs)
            lp_log.removeHandler(grab)
            if rounds:
                out.update(coarse_nodes=rounds[-1][1],
                           coarse_edges=rounds[-1][2])
            out['method'] = 'lpmetis_store'
        else:  # The in-memory partitioner over the mapped graph.
            from torch_autoscale.partition import partition
            cluster = partition(store.to_data(), args.parts,
                                method='lpmetis', seed=args.seed)
            out['method'] = 'lpmetis (in memory)'
        torch.save(cluster, osp.join(w, 'cluster.pt'))
        # Quality, streamed: the fraction of edges cut, the largest part
        # over the mean.
        from torch_autoscale.utils.sparse import row_blocks
        rowptr, col = store['rowptr'], store['col']
        cut = 0
        for r0, r1 in row_blocks(rowptr, 1 << 24):
            p0, p1 = int(rowptr[r0]), int(rowptr[r1])
            row = torch.repeat_interleave(cluster[r0:r1],
                                          rowptr[r0:r1 + 1].diff())
            cut += int((row != cluster[col[p0:p1]]).sum())
        sizes = torch.bincount(cluster, minlength=args.parts).float()
        out.update(edge_cut=cut / max(1, store.num_edges),
                   balance=float(sizes.max() / sizes.mean()))
    elif args.step == 'permute':
        store = gs.GraphStore(store_dir)
        cluster = torch.load(osp.join(w, 'cluster.pt'))
        _, _, ptr = gs.partition_store(store, cluster, args.parts, laid,
                                       checksums=False, progress=False)
        torch.save(ptr, osp.join(w, 'ptr.pt'))
        del store
        shutil.rmtree(store_dir)
    elif args.step in ('train', 'infer'):
        import torch.nn.functional as F

        from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
        from torch_autoscale.nn.models import GraphSAGE
        data = gs.GraphStore(laid).to_data()
        ptr = torch.load(osp.join(w, 'ptr.pt'))
        hist = osp.join(w, 'histories')
        os.makedirs(hist, exist_ok=True)
        torch.manual_seed(args.seed)
        model = GraphSAGE(data.num_nodes, args.features, args.hidden,
                          args.classes, num_layers=2, history_storage='disk',
                          history_dir=hist)
        if args.step == 'train':
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            loader = SubgraphLoader(data, ptr, batch_size=args.batch_size,
                                    shuffle=True, contiguous=args.contiguous)
            model.train()
            steps = halo = pages = 0
            # How far a batch's halo reaches: the feature file's pages it
            # touches (4 KiB each) against all of them.
            rows_per_page = max(1, 4096 // (data.x.size(1) *
                                            data.x.element_size()))
            for batch in loader:
                h = batch.n_id[batch.batch_size:]
                halo += h.numel()
                pages += (h // rows_per_page).unique().numel()
                optimizer.zero_grad()
                h = model(batch.data.x, batch.data.adj_t, batch)
                bs = batch.batch_size
                mask = batch.data.train_mask[:bs]
                if bool(mask.any()):
                    F.cross_entropy(h[:bs][mask],
                                    batch.data.y[:bs][mask]).backward()
                    optimizer.step()
                steps += 1
                print(f'step {steps}/{len(loader)}', file=sys.stderr,
                      flush=True)
            torch.save(model.state_dict(), osp.join(w, 'model.pt'))
            out.update(steps=steps, halo_per_batch=halo / max(1, steps),
                       page_fraction=pages / max(1, steps) / -(
                           -data.num_nodes // rows_per_page),
                       store_bytes=gs.GraphStore(laid).nbytes,
                       history_bytes=sum(h.emb.numel() * h.emb.element_size()
                                         for h in model.histories))
        else:
            model.load_state_dict(torch.load(osp.join(w, 'model.pt')))
            loader = EvalSubgraphLoader(data, ptr, precompute=False,
                                        batch_size=args.batch_size)
            writer = gs.GraphStoreWriter(osp.join(w, 'pred'),
                                         num_nodes=data.num_nodes)
            pred = writer.create('pred', (data.num_nodes, args.classes),
                                 torch.float16)
            model.mini_inference(loader, progress=True, out=pred)
            correct = total = 0
            for start in range(0, data.num_nodes, 1 << 22):
                end = start + (1 << 22)
                mask = data.test_mask[start:end]
                hit = pred[start:end].argmax(-1) == data.y[start:end]
                correct += int(hit[mask].sum())
                total += int(mask.sum())
            writer.abort()
            out['test_acc'] = correct / max(1, total)
            shutil.rmtree(w)
    return out


# The driver ##################################################################


def measure(args, size: int, step: str, workdir: str) -> Dict[str, Any]:
    result = osp.join(workdir + '.result.json')
    cmd = [sys.executable, osp.abspath(__file__), '--step', step,
           '--size', str(size), '--workdir', workdir, '--result', result,
           '--threads', str(args.threads), '--parts',
           str(max(1, size // args.community_size)), '--seed',
           str(args.seed), '--avg-degree', str(args.avg_degree),
           '--features', str(args.features), '--classes', str(args.classes),
           '--community-size', str(args.community_size), '--hidden',
           str(args.hidden), '--batch-size', str(args.batch_size)]
    if args.locality is not None:
        cmd += ['--locality', str(args.locality)]
    if args.contiguous:
        cmd.append('--contiguous')
    if args.max_coarse_entries is not None:
        cmd += ['--max-coarse-entries', str(args.max_coarse_entries)]
    cgroup = None
    if args.memory_limit is not None:
        dropped = bench_util.drop_page_cache()
        try:
            cgroup = bench_util.MemoryCgroup(
                f'out_of_core_{os.getpid()}_{step}',
                int(args.memory_limit * GiB))
        except OSError as e:
            raise SystemExit(f"--memory-limit needs write access to "
                             f"{bench_util.MemoryCgroup.ROOT} (root): {e}; "
                             f"run as root or drop the option") from e
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, preexec_fn=cgroup.enter if cgroup
                            else None)
    sampler = bench_util.RssSampler(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    record = dict(size=size, step=step, seconds=seconds,
                  peak_rss=usage.ru_maxrss * 1024,
                  peak_anon=sampler.peak_anon, peak_file=sampler.peak_file,
                  disk_bytes=bench_util.folder_bytes(workdir),
                  memory_limit=cgroup.limit if cgroup else None,
                  memory_limit_gib=args.memory_limit,
                  cgroup_peak=cgroup.peak if cgroup else None,
                  cache_dropped=dropped if cgroup else None,
                  read_bytes=usage.ru_inblock * 512,
                  written_bytes=usage.ru_oublock * 512,
                  status='ok' if proc.returncode == 0 else
                  f'exit {proc.returncode}')
    if cgroup is not None:
        cgroup.remove()
    if proc.returncode == 0 and osp.exists(result):
        with open(result) as f:
            record.update(json.load(f))
        os.remove(result)
    return record


def series(r: Dict[str, Any]) -> Tuple[int, bool, int]:
    # A graph, partition and batching: the generator's locality (0: cut
    # edges go anywhere), whether batches are runs of consecutive clusters,
    # and lpmetis_store's max_coarse_entries (0: its default).
    return (r.get('locality') or 0, bool(r.get('contiguous')),
            r.get('max_coarse_entries') or 0)


def series_name(key: Tuple[int, bool, int]) -> str:
    locality, contiguous, max_coarse_entries = key
    graph = (f'cut edges to {locality} communities either side'
             if locality else 'cut edges anywhere')
    return graph + ('; consecutive clusters per batch' if contiguous else
                    '; random clusters per batch') + (
                        f'; max_coarse_entries {max_coarse_entries:,}'
                        if max_coarse_entries else '')


def table(records: List[Dict[str, Any]]):
    rows = []
    for r in sorted(records, key=lambda r: (series(r), r['size'],
                                            STEPS.index(r['step']))):
        extra = []
        if 'num_edges' in r:
            extra.append(f"{r['num_edges']:,} directed edges, store "
                         f"{r['store_bytes'] / GiB:.2f} GiB")
        if 'halo_per_batch' in r:
            extra.append(f"halo {r['halo_per_batch']:,.0f} nodes and "
                         f"{100 * r['page_fraction']:.2g}% of the feature "
                         f"pages per batch")
        if 'history_bytes' in r:
            extra.append(f"store + histories on disk "
                         f"{(r['store_bytes'] + r['history_bytes']) / GiB:.1f}"
                         f" GiB")
        if 'test_acc' in r:
            extra.append(f"test acc {100 * r['test_acc']:.1f}%")
        if 'method' in r:
            extra.append(f"{r['method']}: edge cut {r['edge_cut']:.3f}, "
                         f"largest part / mean {r['balance']:.2f}")
        if 'coarse_nodes' in r:
            extra.append(f"coarse graph {r['coarse_nodes']:,} nodes, "
                         f"{r['coarse_edges']:,} edges")
        rows.append([series_name(series(r)), f"{r['size']:,}", r['step'],
                     f"{r['seconds']:.1f}",
                     f"{r['peak_rss'] / GiB:.2f}",
                     f"{r['peak_anon'] / GiB:.2f}"
                     if 'peak_anon' in r else '',
                     f"{r['cgroup_peak'] / GiB:.2f}"
                     if r.get('cgroup_peak') else '',
                     f"{r['read_bytes'] / GiB:.2f}",
                     f"{r['written_bytes'] / GiB:.2f}", r['status'],
                     '; '.join(extra)])
    body = [
        f"torch {bench_util.values(records, 'torch')}, "
        f"{bench_util.values(records, 'threads')} thread(s), commit "
        f"{bench_util.values(records, 'commit')}. Each step in a fresh "
        'process; peak RSS of that process (getrusage: it counts the '
        'pages of mapped files the process touched) and its peak '
        'anonymous RSS (RssAnon, sampled every 0.2 s); bytes read and '
        'written: block I/O of that process (getrusage).'] + ([
        '', 'Every step ran in a memory cgroup limited to '
        f"{bench_util.values(records, 'memory_limit_gib')} GiB, the page "
        'cache dropped before it; peak charged: the most memory the '
        'cgroup held (anonymous memory and page cache).'
    ] if any(r.get('memory_limit') for r in records) else []) + [
        ''
    ] + bench_util.markdown_table(
        ['graph; training batches', 'nodes', 'step', 'seconds',
         'peak RSS (GiB)',
         'peak anonymous RSS (GiB)', 'peak charged (GiB)', 'read (GiB)',
         'written (GiB)', 'status', 'notes'], rows)
    return 'GAS on graphs kept on disk, step by step', body + growth(records)


def growth(records: List[Dict[str, Any]]) -> List[str]:
    # Per series and step, between consecutive sizes: the factor by which
    # its time grew per doubling of the edges,
    # (t2 / t1) ** (1 / log2(E2 / E1)); 2.00 is linear in the edges.
    rows = []
    for key in sorted({series(r) for r in records}):
        rows += growth_rows(key, [r for r in records if series(r) == key])
    if not rows:
        return []
    return ['', 'Time growth per doubling of the directed edges, between '
            'consecutive sizes ((t2 / t1) ** (1 / doublings); 2.00 is '
            'linear):', ''] + bench_util.markdown_table(
                ['graph; training batches', 'nodes', 'doublings of edges'] +
                list(STEPS), rows)


def growth_rows(key: Tuple[int, bool, int],
                records: List[Dict[str, Any]]) -> List[List[str]]:
    edges = {r['size']: r['num_edges'] for r in records
             if r['step'] == 'ingest' and r['status'] == 'ok'}
    sizes = sorted(edges)
    seconds = {(r['size'], r['step']): r['seconds'] for r in records
               if r['status'] == 'ok'}
    rows = []
    for small, large in zip(sizes, sizes[1:]):
        doublings = math.log2(edges[large] / edges[small])
        cells = [series_name(key), f"{small:,} -> {large:,}",
                 f"{doublings:.2f}"]
        for step in STEPS:
            t1, t2 = seconds.get((small, step)), seconds.get((large, step))
            cells.append(f"{(t2 / t1) ** (1 / doublings):.2f}"
                         if t1 and t2 and doublings > 0 else '')
        rows.append(cells)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[1_000_000, 2_000_000, 4_000_000])
    parser.add_argument('--workdir', default=None,
                        help='where the graphs go (default: a temporary '
                        'folder beside the results)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--avg-degree', type=float, default=20.0)
    parser.add_argument('--features', type=int, default=64)
    parser.add_argument('--classes', type=int, default=10)
    parser.add_argument('--community-size', type=int, default=1000)
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=1000,
                        help='clusters per mini-batch (the default, a '
                        'million nodes, reads the halo of 70 mini-batches '
                        'per epoch at 70M nodes, not that of 7,000)')
    parser.add_argument('--locality', type=int, default=None,
                        help='generate a graph whose cut edges stay within '
                        'this many communities on either side '
                        '(generate_edge_list(locality=...); default: '
                        'anywhere)')
    parser.add_argument('--contiguous', action='store_true',
                        help='train on fixed runs of consecutive clusters '
                        '(SubgraphLoader(contiguous=True)) rather than on '
                        'random clusters')
    parser.add_argument('--max-coarse-entries', type=int, default=None,
                        help="lpmetis_store's max_coarse_entries (default: "
                        "its default)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--steps', nargs='+', choices=STEPS,
                        default=list(STEPS),
                        help='run only these steps (a size stops before the '
                        'first step not listed and keeps its files; a later '
                        'run with --skip-done resumes it)')
    parser.add_argument('--memory-limit', type=float, default=None,
                        help='run every step in a memory cgroup limited to '
                        'this many GiB (anonymous memory and page cache), '
                        'after dropping the page cache (needs root)')
    # The inner invocation of one step:
    parser.add_argument('--step', choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument('--size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--parts', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    bench_util.add_output_options(parser, 'out_of_core')
    args = parser.parse_args(argv)

    if args.step is not None:
        out = run_step(args)
        with open(args.result, 'w') as f:
            json.dump(out, f)
        return None

    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        base = args.workdir or osp.join(bench_util.ROOT, 'out_of_core_work')
        os.makedirs(base, exist_ok=True)
        command = bench_util.command_line(__file__, argv)
        records = bench_util.read_jsonl(jsonl) if args.skip_done else []
        key = series(vars(args))
        records = [r for r in records if series(r) == key]
        suffix = ((f'_locality{args.locality}' if args.locality else '') +
                  ('_contiguous' if args.contiguous else '') +
                  (f'_coarse{args.max_coarse_entries}'
                   if args.max_coarse_entries else ''))
        for size in args.sizes:
            workdir = osp.join(base, f'graph_{size}{suffix}')
            done = [r['step'] for r in records
                    if r['size'] == size and r['status'] == 'ok']
            if all(s in done for s in STEPS):
                continue
            # Resume after the last step done if its outputs are still
            # there (the file `steps_done` lists the steps whose outputs the
            # folder holds); otherwise start the size again.
            marker = osp.join(workdir, 'steps_done')
            kept = []
            if args.skip_done and osp.exists(marker):
                with open(marker) as f:
                    kept = [s for s in f.read().split() if s in done]
            if kept != list(STEPS[:len(kept)]):
                kept = []
            bench_util.drop_jsonl(
                jsonl, lambda r, n=size: r['size'] == n and
                series(r) == key and r['step'] not in kept)
            if not kept:
                shutil.rmtree(workdir, ignore_errors=True)
                os.makedirs(workdir)
            for step in STEPS[len(kept):]:
                if step not in args.steps:  # Resumed by a later run.
                    break
                record = measure(args, size, step, workdir)
                record.update(command=command, threads=args.threads,
                              locality=args.locality,
                              contiguous=args.contiguous,
                              max_coarse_entries=args.max_coarse_entries,
                              **bench_util.provenance())
                bench_util.append_jsonl(jsonl, record)
                print(json.dumps({k: v for k, v in record.items()
                                  if k != 'command'}), flush=True)
                if record['status'] != 'ok':
                    break
                kept.append(step)
                if osp.isdir(workdir):
                    with open(marker, 'w') as f:
                        f.write('\n'.join(kept))
            if kept == list(STEPS):
                shutil.rmtree(workdir, ignore_errors=True)
    return bench_util.write_table(args.out, table)


if __name__ == '__main__':
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
