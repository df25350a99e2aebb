r"""Processes of the distributed tests: ``python workers.py CASES OUT_DIR
WORLD_SIZE [MODE [BACKEND]]`` spawns WORLD_SIZE processes (gloo on the CPU
unless BACKEND is nccl), runs the
comma-separated CASES in each and saves every rank's results to
``OUT_DIR/CASE_RANK.pt`` (a separate
interpreter keeps process groups out of the test process)."""
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from torch_autoscale import distributed as tad
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import clustered_graph

NUM_NODES, NUM_PARTS = 400, 8


def graph():
    return clustered_graph(NUM_NODES, NUM_PARTS, adj='gcn_norm',
                           num_classes=4, avg_degree=6)


def exchange(rank, world_size, mode):
    r"""Every rank pushes the rows of its clusters from one known table;
    pulls must return exactly that table's rows."""
    data, ptr = graph()
    loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=2)
    table = torch.arange(NUM_NODES * 3, dtype=torch.float).view(-1, 3)
    out = {}
    for dtype in (torch.float32, torch.float16):
        if mode == 'sharded':
            history = tad.ShardedHistory(loader.assignment, 3, dtype=dtype)
        else:
            history = tad.SharedHistory(NUM_NODES, 3, dtype=dtype)
        for batch in loader:
            history.push(table[batch.n_id[:batch.batch_size]],
                         batch.n_id[:batch.batch_size], batch.offset,
                         batch.count)
        history.sync()
        if mode != 'sharded':
            # Every process has mapped the file and rank 0 has removed its
            # name before entering the barrier of sync().
            # On Linux the file never has a name (O_TMPFILE, opened by the
            # others through /proc).
            out['file_left'] = (out.get('file_left', False)
                                or (history.path is not None
                                    and os.path.exists(history.path)))
            out['named'] = history.path is not None
        gen = torch.Generator().manual_seed(rank)
        n_id = torch.randint(0, NUM_NODES, (50, ), generator=gen)
        out[str(dtype)] = dict(n_id=n_id, pulled=history.pull(n_id),
                               everything=history.pull(),
                               expected=table.to(dtype).float())
        history.sync()  # Nobody closes a shared table others still read.
    out['world_size'] = world_size
    if mode == 'sharded' and world_size > 1:
        foreign = (loader.assignment.node_owner != rank).nonzero()[0]
        try:
            history.push(table[foreign], foreign)
        except ValueError as e:
            out['error'] = str(e)
    if mode == 'sharded':
        out['local_rows'] = history.emb.size(0)
    return out


def inference(rank, world_size, mode):
    r"""Distributed layer-wise inference against full-batch inference."""
    data, ptr = graph()
    loader = tad.DistributedEvalSubgraphLoader(data, ptr, batch_size=1)
    torch.manual_seed(0)  # The same parameters on every rank.
    model = GCN(NUM_NODES, data.num_features, 16, 4, num_layers=3,
                history_factory=tad.history_factory(
                    mode, loader.assignment))
    model.eval()
    full = model(data.x, data.adj_t)
    out = tad.mini_inference(model, loader, progress=False)
    return dict(full=full, distributed=out)


def train(rank, world_size, mode):
    r"""Data-parallel GAS training; every cluster per step is split over
    the processes, so a step covers the same clusters at any world size."""
    data, ptr = graph()
    clusters_per_step = 4
    loader = tad.DistributedSubgraphLoader(
        data, ptr, batch_size=clusters_per_step // world_size, seed=0)
    eval_loader = tad.DistributedEvalSubgraphLoader(data, ptr)
    torch.manual_seed(0)
    factory = (None if mode == 'local' else tad.history_factory(
        mode, loader.assignment))
    model = GCN(NUM_NODES, data.num_features, 16, 4, num_layers=2,
                dropout=0.5, history_factory=factory)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=0.01)
    tad.mini_inference(ddp, eval_loader, progress=False)
    losses = []
    for epoch in range(30):
        loader.set_epoch(epoch)
        ddp.train()
        total = torch.zeros(2)
        for batch in loader:
            optimizer.zero_grad()
            out = ddp(batch.data.x, batch.data.adj_t, batch)
            y = batch.data.y[:batch.batch_size]
            loss = F.cross_entropy(out, y)
            loss.backward()
            optimizer.step()
            n = y.numel()
            total += torch.tensor([float(loss.detach()) * n, n])
        dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
    out = tad.mini_inference(ddp, eval_loader, progress=False)
    acc = float((out.argmax(-1) == data.y).float().mean())
    return dict(losses=losses, acc=acc)


CASES = dict(exchange=exchange, inference=inference, train=train)


def worker(rank, cases, out_dir, world_size, mode, port, backend):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    torch.sparse.check_sparse_tensor_invariants.disable()
    tad.init_process_group(backend)
    try:
        for case in cases.split(','):
            result = CASES[case](rank, world_size, mode)
            torch.save(result, os.path.join(out_dir, f'{case}_{rank}.pt'))
    finally:
        dist.destroy_process_group()


def main():
    case, out_dir, world_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else 'sharded'
    backend = sys.argv[5] if len(sys.argv) > 5 else 'gloo'
    from torch_autoscale.distributed.context import _free_port
    mp.spawn(worker,
             args=(case, out_dir, world_size, mode, _free_port(), backend),
             nprocs=world_size)


if __name__ == '__main__':
    main()
