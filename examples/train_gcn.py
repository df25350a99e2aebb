r"""Trains a GCN with historical embeddings (GNNAutoScale) on one
node-classification dataset.

The default dataset is a homophilous stochastic-block-model graph generated
in-process, so this runs anywhere without a network:

    python examples/train_gcn.py
    python examples/train_gcn.py --dataset cora --root data --runs 5
    python examples/train_gcn.py --dataset pubmed --root data \
        --json pubmed.json --save pubmed.pt

Every node-classification dataset of ``common.NODE_DATASETS`` loads through
PyG's own class from its folder under ``--root`` (``cora`` from
``Planetoid(root/Planetoid, 'Cora')``, ``amazon-computers`` from
``Amazon(root/Amazon, 'Computers')``, ``coauthor-cs`` from
``Coauthor(root/Coauthor, 'CS')``, ``wikics`` from ``WikiCS(root/WikiCS)``,
...). Nothing is downloaded unless ``--download`` is given: a dataset that is
not there is an error naming the files to place and where. Datasets without
public splits get 20 training and 30 validation nodes per class, drawn by
the seed. Unset options take the dataset's reference hyperparameters
(GNNAutoScale's small-graph configurations for the datasets it reports,
generic ones otherwise). The model with the best validation accuracy is
reported (and saved with ``--save``); the test split is never used for
selection.
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import common  # noqa: E402
from common import NODE_DATASETS  # noqa: E402

from torch_autoscale.loader import PartitionedData  # noqa: E402
from torch_autoscale.nn.models import GCN  # noqa: E402
from torch_autoscale.partition import PARTITION_METHODS  # noqa: E402
from torch_autoscale.utils import (  # noqa: E402
    homophilous_sbm,
    sparsify_features,
)


def _reference(num_parts, batch_size, hidden, weight_decay, grad_clip,
               lr=0.01, dropout=0.5, epochs=200):
    return dict(num_parts=num_parts, batch_size=batch_size, hidden=hidden,
                lr=lr, weight_decay=weight_decay, grad_clip=grad_clip,
                dropout=dropout, epochs=epochs)


# Reference hyperparameters (GNNAutoScale small benchmark, GCN): METIS parts,
# clusters per batch, hidden width, weight decay (first layer), gradient clip
# (None: none).
REFERENCE = {
    'synthetic': _reference(40, 10, 64, 5e-4, 1.0, epochs=100),
    'cora': _reference(40, 10, 16, 5e-4, 1.0),
    'citeseer': _reference(24, 8, 16, 5e-4, None),
    'pubmed': _reference(8, 4, 16, 5e-4, 1.0),
    'amazon-computers': _reference(32, 16, 64, 1e-3, 1.0),
    'amazon-photo': _reference(32, 16, 64, 1e-3, None),
    'coauthor-cs': _reference(2, 1, 64, 1e-3, 1.0),
    'coauthor-physics': _reference(4, 2, 64, 1e-3, None),
    'wikics': _reference(32, 16, 33, 5e-4, 1.0, lr=0.02, dropout=0.25),
}
#: Datasets GNNAutoScale does not report.
GENERIC = _reference(40, 10, 64, 5e-4, 1.0)
#: Every dataset's hyperparameters.
DEFAULTS = {name: REFERENCE.get(name, GENERIC)
            for name in ['synthetic', *NODE_DATASETS]}


def load_dataset(name: str, root: str, seed: int, num_nodes: int = 20_000,
                 download: bool = False):
    r"""The graph of :obj:`name` with one-dimensional masks, nodes in the
    dataset's order (:func:`common.load_node_dataset`), or the generated
    :obj:`synthetic` graph of :obj:`num_nodes` nodes."""
    if common.dataset_name(name) == 'synthetic':
        # Half of the edges leave their class: neighbourhoods help, but the
        # task is not trivial (features alone are weak).
        return homophilous_sbm(num_nodes=num_nodes, num_classes=8,
                               avg_degree=8, homophily=0.5, seed=seed)
    try:
        return common.load_node_dataset(name, root, seed, download)
    except ValueError as e:
        if not str(e).startswith('unknown dataset'):
            raise
        raise ValueError(f"{e}, synthetic") from None


def accuracy(out, y, mask) -> float:
    return float((out[mask].argmax(-1) == y[mask]).float().mean())


def model_config(data, num_classes: int, args) -> dict:
    r"""The arguments of :class:`GCN` (saved with the best model)."""
    return dict(num_nodes=data.num_nodes, in_channels=data.num_features,
                hidden_channels=args.hidden, out_channels=num_classes,
                num_layers=args.num_layers, dropout=args.dropout,
                drop_input=True)


def run(args, seed: int, best: common.BestModel = None) -> dict:
    r"""Trains one model; returns its results. The state of best validation
    accuracy is offered to :obj:`best`."""
    torch.manual_seed(seed)
    data = load_dataset(args.dataset, args.root, seed, args.num_nodes,
                        args.download)
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
    config = model_config(data, num_classes, args)
    model = GCN(**config).to(device)
    # Weight decay on the first convolution only, as in the GCN paper.
    optimizer = torch.optim.Adam([
        dict(params=model.convs[0].parameters(),
             weight_decay=args.weight_decay),
        dict(params=model.convs[1:].parameters(), weight_decay=0.0),
    ], lr=args.lr)

    model.mini_inference(eval_loader, progress=False)  # Fill the histories.
    best_val, test_at_best, best_state = -1.0, 0.0, None
    times, val_curve, loss_curve = [], [], []
    pbar = tqdm(range(1, args.epochs + 1), desc=f'seed {seed}',
                disable=args.quiet)
    for epoch in pbar:
        model.train()
        start = time.perf_counter()
        total_loss, steps = 0.0, 0
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
            steps += 1
        times.append(time.perf_counter() - start)
        loss_curve.append(total_loss / max(steps, 1))

        out = model.mini_inference(eval_loader, progress=False)
        val_acc = accuracy(out, data.y, data.val_mask)
        val_curve.append(val_acc)
        if val_acc > best_val:
            best_val = val_acc
            test_at_best = accuracy(out, data.y, data.test_mask)
            train_acc = accuracy(out, data.y, data.train_mask)
            best_state = copy.deepcopy(model.state_dict())
        pbar.set_postfix(loss=f'{total_loss:.3f}', val=f'{val_acc:.4f}',
                         best_val=f'{best_val:.4f}')
    result = dict(dataset=args.dataset, seed=seed, num_nodes=data.num_nodes,
                  epochs=args.epochs, train=train_acc, val=best_val,
                  test=test_at_best, sec_per_epoch=statistics.mean(times),
                  val_curve=val_curve, loss_curve=loss_curve)
    if best is not None:
        best.offer(best_val, best_state, model='GCN', config=config,
                   seed=seed, test=test_at_best, dataset=args.dataset)
    return result


def load_model(path: str) -> GCN:
    r"""The model saved by :obj:`--save` (of this script or of
    ``train_gcn_distributed.py``), on the CPU, in evaluation mode. Its
    full-batch :obj:`model(x, adj_t)` takes any node order; the adjacency
    must be GCN-normalized (:func:`torch_geometric.nn.conv.gcn_conv.gcn_norm`).
    """
    saved = common.load_saved(path)
    model = GCN(**saved['config'])
    model.load_state_dict(saved['state_dict'])
    return model.eval()


def add_arguments(parser: argparse.ArgumentParser,
                  batch_help: str) -> None:
    r"""The dataset, partition and model options; unset ones take the
    dataset's :obj:`DEFAULTS`."""
    def reference(key):
        return "(default: the dataset's, see the table below)"

    choices = sorted(DEFAULTS)
    parser.add_argument('--dataset', default='synthetic',
                        type=common.dataset_name, choices=choices,
                        metavar='NAME', help='generated graph (synthetic) '
                        f"or PyG dataset under --root: {', '.join(choices)}")
    parser.add_argument('--num-nodes', type=int, default=20_000,
                        help='nodes of the synthetic graph')
    parser.add_argument('--num-parts', type=int,
                        help=f'clusters {reference("num_parts")}')
    parser.add_argument('--partition', default='metis',
                        choices=PARTITION_METHODS,
                        help='how to cluster the graph')
    parser.add_argument('--batch-size', type=int,
                        help=f'{batch_help} {reference("batch_size")}')
    parser.add_argument('--hidden', type=int,
                        help=f'hidden width {reference("hidden")}')
    parser.add_argument('--num-layers', type=int, default=2,
                        help='convolutions')
    parser.add_argument('--dropout', type=float,
                        help=f'dropout {reference("dropout")}')
    parser.add_argument('--lr', type=float,
                        help=f'learning rate {reference("lr")}')
    parser.add_argument('--weight-decay', type=float,
                        help='weight decay of the first convolution '
                        f'{reference("weight_decay")}')
    parser.add_argument('--grad-clip', type=float,
                        help='largest gradient norm, None: no clipping '
                        f'{reference("grad_clip")}')
    parser.add_argument('--epochs', type=int,
                        help=f'training epochs {reference("epochs")}')


def fill_defaults(args: argparse.Namespace) -> None:
    r"""Unset options take the dataset's :obj:`DEFAULTS`."""
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def defaults_table() -> str:
    r"""The reference hyperparameters, for :obj:`--help`."""
    keys = list(GENERIC)
    rows = [('dataset', *keys)]
    rows += [(name, *(str(REFERENCE[name][k]) for k in keys))
             for name in REFERENCE]
    rows.append(('others', *(str(GENERIC[k]) for k in keys)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(keys) + 1)]
    return 'defaults of the unset options, by dataset:\n' + '\n'.join(
        '  ' + '  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        for r in rows)


def parser() -> argparse.ArgumentParser:
    p = common.make_parser(__doc__)
    p.epilog = defaults_table()
    add_arguments(p, batch_help='clusters per mini-batch')
    p.add_argument('--num-workers', type=int, default=0,
                   help='loader worker processes')
    common.add_common_arguments(p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    fill_defaults(args)
    common.setup(args)

    print(f'GCN with GAS on {args.dataset}: {args.num_parts} parts, '
          f'{args.batch_size} per batch, hidden {args.hidden}, '
          f'{args.epochs} epochs, lr {args.lr}, wd {args.weight_decay}, '
          f'dropout {args.dropout}, device {args.device}')
    best = common.BestModel() if args.save else None
    results = []
    for seed in common.seeds(args):
        try:
            result = run(args, seed, best)
        except common.DatasetNotFoundError as e:
            raise SystemExit(f'train_gcn.py: {e}') from None
        results.append(result)
        print(f"seed {seed}: train {result['train']:.4f}  val "
              f"{result['val']:.4f}  test {result['test']:.4f}  "
              f"{result['sec_per_epoch']:.4f} s/epoch")
    if len(results) > 1:
        test = [r['test'] for r in results]
        print(f'test accuracy over {len(results)} seeds: '
              f'{100 * statistics.mean(test):.2f} ± '
              f'{100 * statistics.stdev(test):.2f}')
    if args.json:
        common.write_json(args.json, results, args, 'train_gcn')
    if args.plot:
        common.write_plot(args.plot, results, f'GCN with GAS on '
                          f'{args.dataset}')
    if best is not None:
        best.save(args.save)
    return results


if __name__ == '__main__':
    main()
