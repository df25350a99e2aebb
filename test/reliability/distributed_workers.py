r"""One rank of the distributed fault tests: ``python distributed_workers.py
FAULT FAULTY_RANK TIMEOUT OUT_DIR`` joins the group described by
:obj:`RANK`, :obj:`WORLD_SIZE`, :obj:`MASTER_ADDR` and :obj:`MASTER_PORT`,
trains a small GCN with sharded histories under
:class:`~torch.nn.parallel.DistributedDataParallel`, and at the fourth step
rank FAULTY_RANK stalls (``stop``: :obj:`SIGSTOP` to itself) or dies
(``kill``: :obj:`SIGKILL`). Every other rank writes how it ended to
``OUT_DIR/RANK.json`` (the error's class, :obj:`rank` and message, and the
seconds from the fault to the error) and exits with the error, like a
training script.

The ranks meet in OUT_DIR before they join the group, so that a short
timeout does not catch a rank still importing on a busy machine."""
import json
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from torch_autoscale import distributed as tad
from torch_autoscale.nn.models import GCN
from torch_autoscale.testing import clustered_graph


def main():
    fault, faulty, timeout, out_dir = (sys.argv[1], int(sys.argv[2]),
                                       float(sys.argv[3]), sys.argv[4])
    rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    torch.set_num_threads(1)
    torch.sparse.check_sparse_tensor_invariants.disable()
    data, ptr = clustered_graph(200, 4 * world_size, adj='gcn_norm',
                                num_classes=3, avg_degree=5)
    meet(out_dir, rank, world_size)
    tad.init_process_group('gloo', timeout=timeout)
    loader = tad.DistributedSubgraphLoader(data, ptr, batch_size=1, seed=0)
    torch.manual_seed(0)
    model = GCN(data.num_nodes, data.num_features, 8, 3, num_layers=2,
                history_factory=tad.history_factory('sharded',
                                                    loader.assignment))
    result = dict(rank=rank, error=None)
    start = None
    try:
        with tad.collective('the training step'):
            ddp = DistributedDataParallel(model)
            optimizer = torch.optim.Adam(ddp.parameters(), lr=0.01)
            for step in range(1000):
                loader.set_epoch(step)
                for batch in loader:
                    if step == 3 and start is None:
                        start = time.monotonic()
                        if rank == faulty:
                            os.kill(os.getpid(), signal.SIGSTOP if fault ==
                                    'stop' else signal.SIGKILL)
                    optimizer.zero_grad()
                    out_ = ddp(batch.data.x, batch.data.adj_t, batch)
                    loss = F.cross_entropy(out_,
                                           batch.data.y[:batch.batch_size])
                    loss.backward()
                    optimizer.step()
    except Exception as e:
        result.update(error=type(e).__name__, message=str(e),
                      error_rank=getattr(e, 'rank', 'absent'),
                      mro=[c.__name__ for c in type(e).__mro__],
                      seconds=time.monotonic() - (start or 0.0),
                      at=time.time())
        report(out_dir, result)
        raise  # The process must then exit (non-zero), not hang.
    report(out_dir, result)


def meet(out_dir: str, rank: int, world_size: int) -> None:
    open(os.path.join(out_dir, f'ready_{rank}'), 'w').close()
    deadline = time.monotonic() + 120
    while not all(os.path.exists(os.path.join(out_dir, f'ready_{r}'))
                  for r in range(world_size)):
        if time.monotonic() > deadline:
            sys.exit('the other ranks did not start')
        time.sleep(0.05)


def report(out_dir: str, result: dict) -> None:
    path = os.path.join(out_dir, f'{result["rank"]}.json')
    with open(path + '.part', 'w') as f:
        json.dump(result, f)
    os.replace(path + '.part', path)


if __name__ == '__main__':
    main()
