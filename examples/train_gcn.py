r"""Trains a GCN with historical embeddings (GNNAutoScale) on one dataset.

The default dataset is a homophilous stochastic-block-model graph generated
in-process, so this runs anywhere without a network:

    python examples/train_gcn.py
    python examples/train_gcn.py --dataset cora --root data --runs 5

``cora``, ``amazon-computers`` and ``coauthor-cs`` load through PyG's dataset
classes from ``--root`` (``Planetoid(root/Planetoid, 'Cora')``,
``Amazon(root/Amazon, 'Computers')``, ``Coauthor(root/Coauthor, 'CS')``).
Unset options take the dataset's reference hyperparameters (GNNAutoScale's
small-graph configurations). The model with the best validation accuracy is
reported; the test split is never used for selection.
"""
import argparse
import copy
import logging
import statistics
import time

import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from tqdm import tqdm

from torch_autoscale.loader import PartitionedData
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import PARTITION_METHODS
from torch_autoscale.utils import homophilous_sbm, sparsify_features

# Reference hyperparameters (GNNAutoScale small benchmark, GCN): METIS parts,
# clusters per batch, hidden width, weight decay (first layer), gradient clip.
DEFAULTS = {
    'synthetic': dict(num_parts=40, batch_size=10, hidden=64, lr=0.01,
                      weight_decay=5e-4, grad_clip=1.0, dropout=0.5,
                      epochs=100),
    'cora': dict(num_parts=40, batch_size=10, hidden=16, lr=0.01,
                 weight_decay=5e-4, grad_clip=1.0, dropout=0.5, epochs=200),
    'amazon-computers': dict(num_parts=32, batch_size=16, hidden=64, lr=0.01,
                             weight_decay=1e-3, grad_clip=1.0, dropout=0.5,
                             epochs=200),
    'coauthor-cs': dict(num_parts=2, batch_size=1, hidden=64, lr=0.01,
                        weight_decay=1e-3, grad_clip=1.0, dropout=0.5,
                        epochs=200),
}


def load_dataset(name: str, root: str, seed: int, num_nodes: int = 20_000):
    if name == 'synthetic':
        # Half of the edges leave their class: neighbourhoods help, but the
        # task is not trivial (features alone are weak).
        return homophilous_sbm(num_nodes=num_nodes, num_classes=8,
                               avg_degree=8, homophily=0.5, seed=seed)
    if name == 'cora':
        from torch_geometric.datasets import Planetoid
        return Planetoid(f'{root}/Planetoid', 'Cora')[0]
    if name in ('amazon-computers', 'coauthor-cs'):
        from torch_geometric.datasets import Amazon, Coauthor
        if name == 'amazon-computers':
            data = Amazon(f'{root}/Amazon', 'Computers')[0]
        else:
            data = Coauthor(f'{root}/Coauthor', 'CS')[0]
        return random_split(data, seed)
    raise ValueError(f"unknown dataset '{name}'")


def random_split(data, seed: int):
    r"""Without public splits: 20 training and 30 validation nodes per class,
    the rest for testing (Shchur et al.'s protocol, as in GNNAutoScale)."""
    num_classes = int(data.y.max()) + 1
    num_val = 30 * num_classes
    num_test = data.num_nodes - num_val - 20 * num_classes
    torch.manual_seed(seed)
    return T.RandomNodeSplit('random', num_train_per_class=20,
                             num_val=num_val, num_test=num_test)(data)


def accuracy(out, y, mask) -> float:
    return float((out[mask].argmax(-1) == y[mask]).float().mean())


def run(args, seed: int):
    torch.manual_seed(seed)
    data = load_dataset(args.dataset, args.root, seed)
    num_classes = int(data.y.max()) + 1
    # Cluster (METIS by default), normalize the adjacency on the whole graph
    # (GCN's convolutions do not) and renumber the nodes cluster by cluster.
    # Model outputs, data.y and the masks are all in that new order.
    pdata = PartitionedData(data, args.num_parts, args.partition,
                            normalize='gcn')
    data = pdata.data
    # Bag-of-words features (Cora, Coauthor-CS) stay sparse: input dropout
    # and the first layer then cost time in proportion to the non-zeros.
    data.x = sparsify_features(data.x)
    train_loader = pdata.loader(batch_size=args.batch_size, shuffle=True,
                                num_workers=args.num_workers,
                                persistent_workers=args.num_workers > 0)
    eval_loader = pdata.eval_loader(batch_size=args.batch_size)

    device = torch.device(args.device)
    model = GCN(data.num_nodes, data.num_features, args.hidden, num_classes,
                num_layers=args.num_layers, dropout=args.dropout,
                drop_input=True).to(device)
    # Weight decay on the first convolution only, as in the GCN paper.
    optimizer = torch.optim.Adam([
        dict(params=model.convs[0].parameters(),
             weight_decay=args.weight_decay),
        dict(params=model.convs[1:].parameters(), weight_decay=0.0),
    ], lr=args.lr)

    model.mini_inference(eval_loader, progress=False)  # Fill the histories.
    best_val, test_at_best, best_state = -1.0, 0.0, None
    times = []
    pbar = tqdm(range(1, args.epochs + 1), desc=f'seed {seed}',
                disable=args.quiet)
    for epoch in pbar:
        model.train()
        start = time.perf_counter()
        total_loss = 0.0
        for batch in train_loader:
            batch = batch.to(device, non_blocking=True)
            optimizer.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            bs = batch.batch_size
            mask = batch.data.train_mask[:bs]
            if not bool(mask.any()):
                continue
            loss = F.cross_entropy(out[:bs][mask], batch.data.y[:bs][mask])
            loss.backward()
            if args.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(),
                                               args.grad_clip)
            optimizer.step()
            total_loss += float(loss.detach())
        times.append(time.perf_counter() - start)

        out = model.mini_inference(eval_loader, progress=False)
        val_acc = accuracy(out, data.y, data.val_mask)
        if val_acc > best_val:
            best_val = val_acc
            test_at_best = accuracy(out, data.y, data.test_mask)
            train_acc = accuracy(out, data.y, data.train_mask)
            best_state = copy.deepcopy(model.state_dict())
        pbar.set_postfix(loss=f'{total_loss:.3f}', val=f'{val_acc:.4f}',
                         best_val=f'{best_val:.4f}')
    del best_state
    return train_acc, best_val, test_at_best, statistics.mean(times)


def add_arguments(parser: argparse.ArgumentParser,
                  batch_help: str) -> None:
    r"""The dataset, partition and model options; unset ones take the
    dataset's :obj:`DEFAULTS`."""
    parser.add_argument('--dataset', default='synthetic',
                        choices=sorted(DEFAULTS))
    parser.add_argument('--root', default='data',
                        help='folder holding the PyG dataset roots')
    parser.add_argument('--num-parts', type=int, help='clusters')
    parser.add_argument('--partition', default='metis',
                        choices=PARTITION_METHODS,
                        help='how to cluster the graph (default: metis)')
    parser.add_argument('--batch-size', type=int, help=batch_help)
    parser.add_argument('--hidden', type=int)
    parser.add_argument('--num-layers', type=int, default=2)
    parser.add_argument('--dropout', type=float)
    parser.add_argument('--lr', type=float)
    parser.add_argument('--weight-decay', type=float)
    parser.add_argument('--grad-clip', type=float)
    parser.add_argument('--epochs', type=int)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_arguments(parser, batch_help='clusters per mini-batch')
    parser.add_argument('--runs', type=int, default=1,
                        help='number of seeds (0, 1, ...)')
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bars')
    args = parser.parse_args()
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    logging.basicConfig(level=logging.WARNING)
    # Sparse tensors here come from trusted kernels: opt out of invariant
    # checks explicitly (the default), which also silences PyTorch's warning.
    torch.sparse.check_sparse_tensor_invariants.disable()

    print(f'GCN with GAS on {args.dataset}: {args.num_parts} parts, '
          f'{args.batch_size} per batch, hidden {args.hidden}, '
          f'{args.epochs} epochs, lr {args.lr}, wd {args.weight_decay}, '
          f'dropout {args.dropout}, device {args.device}')
    results = []
    for seed in range(args.runs):
        train_acc, val_acc, test_acc, sec = run(args, seed)
        results.append(test_acc)
        print(f'seed {seed}: train {train_acc:.4f}  val {val_acc:.4f}  '
              f'test {test_acc:.4f}  {sec:.4f} s/epoch')
    if len(results) > 1:
        print(f'test accuracy over {len(results)} seeds: '
              f'{100 * statistics.mean(results):.2f} ± '
              f'{100 * statistics.stdev(results):.2f}')


if __name__ == '__main__':
    main()
