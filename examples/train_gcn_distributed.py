r"""Data-parallel GCN training with historical embeddings (GNNAutoScale) over
several processes, on one machine or many:

    torchrun --nproc-per-node 2 examples/train_gcn_distributed.py
    torchrun --nproc-per-node 2 examples/train_gcn_distributed.py \
        --dataset cora --root data --history shared
    python examples/train_gcn_distributed.py          # one process

Every process trains the clusters it owns (parameters synchronised by
``DistributedDataParallel``); histories are either one table in the shared
memory of the machine (``--history shared``) or sharded over the processes
by cluster ownership, halo rows exchanged with ``all_to_all``
(``--history sharded``, the default, also across machines). ``--batch-size``
counts the clusters of one optimizer step over all processes, so a run
takes the same steps at any number of processes. Datasets and their
reference hyperparameters are those of ``train_gcn.py``; the model of best
validation accuracy is reported, the test split is never used for
selection; ``--save`` saves it (rank 0), ``--json`` writes the results
(rank 0). Uses gloo on CPUs and NCCL on GPUs (``--device``).

On a fresh ``--root`` rank 0 loads (and PyG processes) the dataset first
while the others wait, then one process per machine, then the rest: they
never write the same files at once.

A process that stops answering (stalled or dead) ends every other one after
``--timeout`` seconds (default: 300) with a
``torch_autoscale.errors.DistributedTimeoutError`` that names its rank, and
then ``torchrun`` as a whole, with a non-zero exit code.
"""
import argparse
import copy
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import common  # noqa: E402
from train_gcn import (  # noqa: E402
    accuracy,
    add_arguments,
    defaults_table,
    fill_defaults,
    load_dataset,
    model_config,
)

from torch_autoscale import distributed as tad  # noqa: E402
from torch_autoscale.loader import PartitionedData  # noqa: E402
from torch_autoscale.nn.models import GCN  # noqa: E402
from torch_autoscale.partition import partition  # noqa: E402
from torch_autoscale.utils import sparsify_features  # noqa: E402

log = logging.getLogger('train_gcn_distributed')


def shared_partition(data, args, rank: int, seed: int) -> PartitionedData:
    r"""Partitions on rank 0 and sends the clusters to all: every process
    must hold the same partition. The adjacency is normalized on the whole
    graph (GCN's convolutions do not) and the nodes renumbered cluster by
    cluster."""
    cluster = [None]
    if rank == 0:
        cluster[0] = partition(data.edge_index, args.num_parts,
                               method=args.partition,
                               num_nodes=data.num_nodes, seed=seed)
    with tad.collective('sharing the partition'):
        dist.broadcast_object_list(cluster, src=0)
    pdata = PartitionedData(data, args.num_parts, normalize='gcn',
                            cluster=cluster[0])
    # Bag-of-words features (Cora, Coauthor-CS) stay sparse.
    pdata.data.x = sparsify_features(pdata.data.x)
    return pdata


class LoadError(RuntimeError):
    r"""A process could not load the dataset (raised on every process)."""


def in_turn(load: Callable, rank: int):
    r"""Calls :obj:`load` on rank 0 first, then on one process of every
    other machine (:obj:`LOCAL_RANK` 0), then on the rest, so that processes
    never prepare the same dataset files at once (PyG writes
    :obj:`processed/` on first use). A failure anywhere ends every process
    with the failing rank's message, not with a timeout."""
    stage = 0 if rank == 0 else 1 if tad.local_rank() == 0 else 2
    out = None
    for turn in range(3):
        error = None
        if turn == stage:
            try:
                out = load()
            except Exception as e:  # Sent to all, raised below.
                error = f'{type(e).__name__}: {e}'
        errors = [None] * dist.get_world_size()
        with tad.collective('loading the dataset in turn'):
            dist.all_gather_object(errors, error)
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if failed:
            r, e = failed[0]
            raise LoadError(f'rank {r} could not load the dataset: {e}')
    return out


def run(args, seed: int, best: common.BestModel = None) -> dict:
    r"""Trains one model on every process of the (initialized) process
    group; returns the results. Rank 0 offers the state of best validation
    accuracy to :obj:`best`."""
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = (torch.device('cuda', torch.cuda.current_device())
              if torch.device(args.device).type == 'cuda'
              else torch.device('cpu'))
    torch.manual_seed(seed)
    data = in_turn(lambda: load_dataset(args.dataset, args.root, seed,
                                        args.num_nodes, args.download), rank)
    num_classes = int(data.y.max()) + 1
    pdata = shared_partition(data, args, rank, seed)
    data, ptr = pdata.data, pdata.ptr  # Outputs, labels, masks: new order.

    per_process = max(1, args.batch_size // world_size)
    if per_process * world_size != args.batch_size and rank == 0:
        log.warning('%d clusters per step do not split over %d processes: '
                    'each takes %d', args.batch_size, world_size, per_process)
    loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=per_process,
                                           shuffle=True, seed=seed)
    eval_loader = tad.DistributedEvalSubgraphLoader(data, ptr,
                                                    batch_size=per_process)
    factory = tad.history_factory(
        args.history, loader.assignment,
        directory=args.history_dir if args.history == 'shared' else None)
    torch.manual_seed(seed)  # The same initial parameters everywhere.
    config = model_config(data, num_classes, args)
    model = GCN(**config, history_factory=factory).to(device)
    with tad.collective('DistributedDataParallel (sharing parameters)'):
        ddp = DistributedDataParallel(model)
    # Weight decay on the first convolution only, as in the GCN paper.
    optimizer = torch.optim.Adam([
        dict(params=model.convs[0].parameters(),
             weight_decay=args.weight_decay),
        dict(params=model.convs[1:].parameters(), weight_decay=0.0),
    ], lr=args.lr)

    tad.mini_inference(ddp, eval_loader, progress=False)  # Fill histories.
    best_val, test_at_best, times, curve = -1.0, 0.0, [], []
    loss_curve = []
    best_state = None
    pbar = tqdm(range(1, args.epochs + 1), disable=args.quiet or rank != 0,
                desc=f'{world_size} x {args.history}')
    for epoch in pbar:
        loader.set_epoch(epoch)
        ddp.train()
        with tad.collective('the start of an epoch'):
            dist.barrier()
        start = time.perf_counter()
        total = torch.zeros(2)
        # The library's collectives (history pulls) name their failures
        # themselves; this names those of DistributedDataParallel's
        # gradient all-reduce.
        with tad.collective('a training step'):
            for batch in loader:
                batch = batch.to(device, non_blocking=True)
                optimizer.zero_grad()
                out = ddp(batch.data.x, batch.data.adj_t, batch)
                bs = batch.batch_size
                mask = batch.data.train_mask[:bs]
                if bool(mask.any()):
                    loss = F.cross_entropy(out[:bs][mask],
                                           batch.data.y[:bs][mask])
                    total += torch.tensor([float(loss.detach()), 1.0])
                else:  # Every process must take part in every step.
                    loss = out.sum() * 0.0
                loss.backward()
                if args.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(ddp.parameters(),
                                                   args.grad_clip)
                optimizer.step()
        with tad.collective('the end of an epoch'):
            dist.barrier()
            times.append(time.perf_counter() - start)
            dist.all_reduce(total)
        loss_curve.append(float(total[0] / total[1].clamp(min=1)))

        out = tad.mini_inference(ddp, eval_loader, progress=False).cpu()
        val_acc = accuracy(out, data.y, data.val_mask)
        curve.append(val_acc)
        if val_acc > best_val:
            best_val = val_acc
            test_at_best = accuracy(out, data.y, data.test_mask)
            if best is not None and rank == 0:
                best_state = copy.deepcopy(model.state_dict())
        pbar.set_postfix(loss=f'{loss_curve[-1]:.3f}',
                         val=f'{val_acc:.4f}', best_val=f'{best_val:.4f}')
    # The first epoch warms up allocators and caches.
    sec = statistics.median(times[1:] if len(times) > 1 else times)
    result = dict(dataset=args.dataset, history=args.history,
                  world_size=world_size, threads=torch.get_num_threads(),
                  backend=dist.get_backend(), seed=seed,
                  num_nodes=data.num_nodes, epochs=args.epochs,
                  clusters_per_step=per_process * world_size,
                  steps_per_epoch=len(loader), val=best_val,
                  test=test_at_best, sec_per_epoch=sec, val_curve=curve,
                  loss_curve=loss_curve)
    if best_state is not None:
        best.offer(best_val, best_state, model='GCN', config=config,
                   seed=seed, test=test_at_best, dataset=args.dataset)
    return result


def parser() -> argparse.ArgumentParser:
    p = common.make_parser(__doc__)
    p.epilog = defaults_table()
    add_arguments(p, batch_help='clusters per step, over all processes')
    p.add_argument('--history', default='sharded', choices=tad.HISTORY_MODES,
                   help='how processes share histories')
    # Linux's shared-memory mount keeps a shared table in RAM; elsewhere the
    # library's default (the temp folder) serves through the page cache.
    shm = '/dev/shm'
    p.add_argument('--history-dir',
                   default=shm if os.path.isdir(shm) else None,
                   help="folder of the 'shared' tables (default: /dev/shm "
                   "where it exists, else the temp folder)")
    p.add_argument('--backend', default=None, choices=['gloo', 'nccl'],
                   help='torch.distributed backend (default: nccl with '
                   '--device cuda, gloo otherwise)')
    p.add_argument('--timeout', type=float,
                   default=tad.DEFAULT_TIMEOUT.total_seconds(),
                   help='seconds a collective waits for the other processes '
                   'before the run ends with an error naming the one that '
                   'stopped answering')
    common.add_common_arguments(
        p, device="'cuda' (one GPU per process, by LOCAL_RANK) when "
        "available, else 'cpu'",
        json='rank 0 writes the results (every run and their mean) to this '
        'JSON file (default: not written)',
        save='rank 0 saves the model of best validation accuracy (over all '
        'runs) to this file (default: not saved)',
        threads='intra-op CPU threads per process (default: PyTorch\'s '
        f'choice, {torch.get_num_threads()} here)')
    return p


@record  # torchrun's failure summary then shows the error, not just a code.
def main(argv=None):
    args = parser().parse_args(argv)
    fill_defaults(args)
    common.setup(args)
    cuda = torch.device(args.device).type == 'cuda'
    backend = args.backend or ('nccl' if cuda else 'gloo')
    rank, _ = tad.init_process_group(backend, timeout=args.timeout)
    if cuda and backend != 'nccl':  # nccl selects the device itself.
        torch.cuda.set_device(tad.local_rank())
    best = common.BestModel() if args.save and rank == 0 else None
    results = []
    for seed in common.seeds(args):
        try:
            result = run(args, seed, best)
        except LoadError as e:
            dist.destroy_process_group()
            raise SystemExit(f'train_gcn_distributed.py: {e}') from None
        results.append(result)
        if rank == 0:
            print(f"{result['world_size']} process(es), {args.history} "
                  f"histories, {args.dataset}, seed {seed}: val "
                  f"{result['val']:.4f}  test {result['test']:.4f}  "
                  f"{result['sec_per_epoch']:.4f} s/epoch")
    # Only once the model (and DistributedDataParallel's reducer, which
    # holds the process group) is gone: tearing the group down from inside
    # the reducer's destructor can deadlock gloo's threads.
    dist.destroy_process_group()
    if rank == 0:
        common.print_summary(results)
        if args.json:
            common.write_json(args.json, results, args,
                              'train_gcn_distributed')
        if args.plot:
            common.write_plot(args.plot, results, f'GCN with GAS on '
                              f'{args.dataset}, {results[0]["world_size"]} '
                              f'process(es), {args.history} histories')
        if best is not None:
            best.save(args.save)
    return results


if __name__ == '__main__':
    main()
