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
selection. Uses gloo on CPUs and NCCL on GPUs.

A process that stops answering (stalled or dead) ends every other one after
``--timeout`` seconds (default: 300) with a
``torch_autoscale.errors.DistributedTimeoutError`` that names its rank, and
then ``torchrun`` as a whole, with a non-zero exit code.
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from train_gcn import (  # noqa: E402
    DEFAULTS,
    accuracy,
    add_arguments,
    load_dataset,
)

from torch_autoscale import distributed as tad  # noqa: E402
from torch_autoscale.loader import PartitionedData  # noqa: E402
from torch_autoscale.nn.models import GCN  # noqa: E402
from torch_autoscale.partition import partition  # noqa: E402
from torch_autoscale.utils import sparsify_features  # noqa: E402

log = logging.getLogger('train_gcn_distributed')


def shared_partition(data, args, rank: int) -> PartitionedData:
    r"""Partitions on rank 0 and sends the clusters to all: every process
    must hold the same partition. The adjacency is normalized on the whole
    graph (GCN's convolutions do not) and the nodes renumbered cluster by
    cluster."""
    cluster = [None]
    if rank == 0:
        cluster[0] = partition(data.edge_index, args.num_parts,
                               method=args.partition,
                               num_nodes=data.num_nodes, seed=args.seed)
    with tad.collective('sharing the partition'):
        dist.broadcast_object_list(cluster, src=0)
    pdata = PartitionedData(data, args.num_parts, normalize='gcn',
                            cluster=cluster[0])
    # Bag-of-words features (Cora, Coauthor-CS) stay sparse.
    pdata.data.x = sparsify_features(pdata.data.x)
    return pdata


def run(args) -> dict:
    rank, world_size = tad.init_process_group(
        args.backend, timeout=getattr(args, 'timeout', None))
    device = (torch.device('cuda', torch.cuda.current_device())
              if dist.get_backend() == 'nccl' else torch.device('cpu'))
    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, args.root, args.seed, args.num_nodes)
    num_classes = int(data.y.max()) + 1
    pdata = shared_partition(data, args, rank)
    data, ptr = pdata.data, pdata.ptr  # Outputs, labels, masks: new order.

    per_process = max(1, args.batch_size // world_size)
    if per_process * world_size != args.batch_size and rank == 0:
        log.warning('%d clusters per step do not split over %d processes: '
                    'each takes %d', args.batch_size, world_size, per_process)
    loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=per_process,
                                           shuffle=True, seed=args.seed)
    eval_loader = tad.DistributedEvalSubgraphLoader(data, ptr,
                                                    batch_size=per_process)
    factory = tad.history_factory(
        args.history, loader.assignment,
        directory=args.history_dir if args.history == 'shared' else None)
    torch.manual_seed(args.seed)  # The same initial parameters everywhere.
    model = GCN(data.num_nodes, data.num_features, args.hidden, num_classes,
                num_layers=args.num_layers, dropout=args.dropout,
                drop_input=True, history_factory=factory).to(device)
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

        out = tad.mini_inference(ddp, eval_loader, progress=False).cpu()
        val_acc = accuracy(out, data.y, data.val_mask)
        curve.append(val_acc)
        if val_acc > best_val:
            best_val = val_acc
            test_at_best = accuracy(out, data.y, data.test_mask)
        pbar.set_postfix(loss=f'{float(total[0] / total[1].clamp(min=1)):.3f}',
                         val=f'{val_acc:.4f}', best_val=f'{best_val:.4f}')
    # The first epoch warms up allocators and caches.
    sec = statistics.median(times[1:] if len(times) > 1 else times)
    result = dict(dataset=args.dataset, history=args.history,
                  world_size=world_size, threads=torch.get_num_threads(),
                  backend=dist.get_backend(), seed=args.seed,
                  num_nodes=data.num_nodes, epochs=args.epochs,
                  clusters_per_step=per_process * world_size,
                  steps_per_epoch=len(loader), val=best_val,
                  test=test_at_best, sec_per_epoch=sec, val_curve=curve,
                  rank=rank)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_arguments(p, batch_help='clusters per step, over all processes')
    p.add_argument('--num-nodes', type=int, default=20_000,
                   help='nodes of the synthetic graph')
    p.add_argument('--history', default='sharded', choices=tad.HISTORY_MODES,
                   help='how processes share histories (default: sharded)')
    # Linux's shared-memory mount keeps a shared table in RAM; elsewhere the
    # library's default (the temp folder) serves through the page cache.
    shm = '/dev/shm'
    p.add_argument('--history-dir',
                   default=shm if os.path.isdir(shm) else None,
                   help="folder of the 'shared' tables (default: /dev/shm "
                   "where it exists, else the temp folder)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=None,
                   help='intra-op threads per process')
    p.add_argument('--backend', default=None, choices=['gloo', 'nccl'],
                   help='default: nccl with CUDA, gloo otherwise')
    p.add_argument('--timeout', type=float,
                   default=tad.DEFAULT_TIMEOUT.total_seconds(),
                   help='seconds a collective waits for the other processes '
                   'before the run ends with an error naming the one that '
                   'stopped answering (default: 300)')
    p.add_argument('--json', default=None,
                   help='rank 0 writes the results here')
    p.add_argument('--quiet', action='store_true')
    return p


@record  # torchrun's failure summary then shows the error, not just a code.
def main():
    args = parser().parse_args()
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    logging.basicConfig(level=logging.WARNING)
    torch.sparse.check_sparse_tensor_invariants.disable()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(args)
    # Only once the model (and DistributedDataParallel's reducer, which
    # holds the process group) is gone: tearing the group down from inside
    # the reducer's destructor can deadlock gloo's threads.
    dist.destroy_process_group()
    if result.pop('rank') == 0:
        print(f"{result['world_size']} process(es), {args.history} "
              f"histories, {args.dataset}: val {result['val']:.4f}  test "
              f"{result['test']:.4f}  {result['sec_per_epoch']:.4f} s/epoch")
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
