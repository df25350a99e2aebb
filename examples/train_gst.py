r"""Graph property prediction with Graph Segment Training (GST+EFD and its
variants) on MalNet-Tiny or a TU dataset.

    python examples/train_gst.py --root data --variant gst-efd
    python examples/train_gst.py --root data --dataset PROTEINS \
        --max-segment-size 16 --variant gst-e --epochs 50

MalNet-Tiny loads through PyG's ``MalNetTiny(root/MalNetTiny)`` with its
official train/val/test split; its graphs have no node features, so nodes get
the log of their local degree profile. TU datasets (``TUDataset(
root/TUDataset, NAME)``) are split 80/10/10 at random by ``--seed``. Graphs
are split into segments of at most ``--max-segment-size`` nodes (METIS by
default) once, cached next to the dataset. The epoch of best validation
accuracy is reported (after head finetuning for the +F variants); the test
split is never used for selection. Reports the segments per graph (and
warns when ``--max-segment-size`` leaves every graph whole: GST then trains
on whole graphs), accuracy, the memory of a training step and milliseconds
per iteration. ``--save`` saves the best model (``load_model`` rebuilds it),
``--json`` writes the results. Nothing is downloaded unless ``--download``
is given.
"""
import argparse
import copy
import glob
import logging
import os.path as osp
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import common  # noqa: E402

from torch_autoscale.segment import (  # noqa: E402
    SEGMENT_METHODS,
    VARIANTS,
    GSTModel,
    SegmentedDataset,
    SegmentEncoder,
    SegmentLoader,
)
from torch_autoscale.utils import StepMemory  # noqa: E402

log = logging.getLogger('train_gst')


class LogDegreeProfile(T.BaseTransform):
    r"""Node features for graphs without any: the local degree profile
    (degree and min/max/mean/std of the neighbours' degrees), log-scaled as
    degrees are heavy-tailed."""
    def forward(self, data):
        data = T.LocalDegreeProfile()(data)
        data.x = torch.log1p(data.x)
        return data


def tu_datasets(root: str) -> List[str]:
    r"""The TU datasets found under :obj:`root/TUDataset`."""
    return sorted(osp.basename(osp.dirname(osp.dirname(path)))
                  for path in glob.glob(osp.join(root, 'TUDataset', '*',
                                                 '*', '*_A.txt')))


def load(name: str, root: str, seed: int, max_graphs: Optional[int] = None,
         download: bool = False) -> Tuple[Any, Dict[str, List[int]]]:
    r"""The dataset and its train/val/test graph indices. A dataset missing
    from :obj:`root` raises :class:`common.DatasetNotFoundError` naming the
    folder and the datasets that are there, unless :obj:`download`."""
    found = tu_datasets(root)
    hint = (f" train_gst.py takes 'malnet-tiny' (root/MalNetTiny) or a TU "
            f"dataset name (root/TUDataset/NAME/raw); found under {root}: "
            f"{', '.join(found) if found else 'none'}.")
    if name == 'malnet-tiny':
        from torch_geometric.datasets import MalNetTiny
        path = osp.join(root, 'MalNetTiny')
        dataset = common.offline(MalNetTiny, download, hint)(
            path, transform=LogDegreeProfile())
        ptr = torch.load(osp.join(dataset.processed_dir, 'split_slices.pt'))
        splits = {key: list(range(ptr[i], ptr[i + 1]))
                  for i, key in enumerate(('train', 'val', 'test'))}
    else:
        from torch_geometric.datasets import TUDataset
        dataset = common.offline(TUDataset, download, hint)(
            osp.join(root, 'TUDataset'), name)
        if dataset.num_features == 0:
            dataset.transform = LogDegreeProfile()
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(dataset), generator=gen).tolist()
        n_train, n_val = int(0.8 * len(perm)), int(0.1 * len(perm))
        splits = dict(train=perm[:n_train],
                      val=perm[n_train:n_train + n_val],
                      test=perm[n_train + n_val:])
    if max_graphs is not None:  # Smoke runs: a prefix of every split.
        share = max(1, max_graphs // 3)
        splits = {k: v[:share] for k, v in splits.items()}
    return dataset, splits


def accuracy(model: GSTModel, loader: SegmentLoader,
             y: torch.Tensor) -> float:
    graph_id, out = model.predict(loader, progress=False)
    return float((out.argmax(-1).cpu() == y[graph_id]).float().mean())


def make_encoder(args: argparse.Namespace,
                 in_channels: int) -> SegmentEncoder:
    r"""The backbone the command line asks for."""
    # Sum pooling (the paper's) bounds a segment's embedding by the segment
    # size; over whole graphs it grows with the graph, and full-graph
    # training did better with mean pooling on validation
    # (benchmark/results/gst_pilot.md).
    pool = args.pool or ('mean' if args.variant == 'full' else 'sum')
    return SegmentEncoder(in_channels, args.hidden, args.num_layers,
                          conv=args.conv, batch_norm=args.batch_norm,
                          normalize=args.normalize, pool=pool)


def run(args: argparse.Namespace,
        best: Optional[common.BestModel] = None) -> Dict[str, Any]:
    r"""Trains and evaluates one variant with seed :obj:`args.seed`; returns
    its results. The final model (the epoch of best validation accuracy,
    after finetuning for +F) is offered to :obj:`best`."""
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    dataset, splits = load(args.dataset, args.root, args.seed,
                           args.max_graphs, getattr(args, 'download', False))
    used = sorted(set(sum(splits.values(), [])))
    subset = dataset if args.max_graphs is None else dataset[used]
    if args.max_graphs is not None:  # Re-index the splits into the subset.
        where = {g: i for i, g in enumerate(used)}
        splits = {k: [where[g] for g in v] for k, v in splits.items()}
    segmented = SegmentedDataset(
        subset, args.max_segment_size, method=args.segment_method,
        seed=0, cache=None if args.max_graphs is None else False,
        progress=not args.quiet)
    segments = segments_per_graph(segmented, args)
    y = segmented.y
    num_classes = int(y.max()) + 1
    in_channels = segmented[0].x.size(-1)

    encoder = make_encoder(args, in_channels)
    head = torch.nn.Linear(args.hidden, num_classes)
    model = GSTModel(encoder, head, num_segments=segmented.num_segments,
                     variant=args.variant, keep_prob=args.keep_prob,
                     aggr=args.aggr).to(device)
    whole = args.variant == 'full'

    def all_segments(split: str) -> SegmentLoader:
        return SegmentLoader(segmented, batch_size=args.eval_batch_size,
                             num_sampled=None, whole=whole,
                             indices=splits[split])

    train_loader = SegmentLoader(segmented, batch_size=args.batch_size,
                                 shuffle=True, indices=splits['train'],
                                 **model.loader_options)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr,
                                 weight_decay=args.weight_decay)
    # Cosine annealing over the epochs, the default schedule of the paper's
    # GraphGym-based code: late epochs change the encoder little, so the
    # table's rows go stale slowly as training ends.
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.epochs) if args.scheduler == 'cosine' else None)
    if model.table is not None:  # Fill the table before the first step.
        model.refresh_table(all_segments('train'), progress=not args.quiet)

    best_val, best_state, step_ms, step_mem = -1.0, None, [], 0
    val_curve: List[Tuple[int, float]] = []
    loss_curve: List[float] = []
    for epoch in tqdm(range(args.epochs), desc=args.variant,
                      disable=args.quiet):
        model.train()
        total_loss, steps = 0.0, 0
        for batch in train_loader:
            batch = batch.to(device)
            start = time.perf_counter()
            with StepMemory(device) as mem:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(batch), batch.y)
                loss.backward()
                optimizer.step()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            step_ms.append(1000 * (time.perf_counter() - start))
            step_mem = max(step_mem, mem.peak_bytes)
            total_loss += float(loss.detach())
            steps += 1
        loss_curve.append(total_loss / max(steps, 1))
        if scheduler is not None:
            scheduler.step()
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            val = accuracy(model, all_segments('val'), y)
            val_curve.append((epoch + 1, val))
            if val > best_val:
                best_val, best_state = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    if model.table is not None:  # The table is not part of the state.
        model.refresh_table(all_segments('train'), progress=False)
    result = dict(variant=args.variant, dataset=args.dataset,
                  seed=args.seed, epochs=args.epochs,
                  scheduler=args.scheduler, encoder=repr(encoder),
                  segments_per_graph=segments, val_curve=val_curve,
                  loss_curve=loss_curve,
                  val=best_val, test=accuracy(model, all_segments('test'), y))
    if model.spec.finetune:
        model.finetune(all_segments('train'), epochs=args.finetune_epochs,
                       lr=args.lr, weight_decay=args.weight_decay,
                       batch_size=args.batch_size, scheduler=args.scheduler,
                       progress=not args.quiet)
        result.update(val_before_finetune=result['val'],
                      test_before_finetune=result['test'],
                      val=accuracy(model, all_segments('val'), y),
                      test=accuracy(model, all_segments('test'), y))
    # The first steps warm up allocators and caches; report the median.
    result.update(ms_per_iter=statistics.median(step_ms),
                  step_memory_bytes=step_mem, memory_kind=mem.kind)
    if best is not None:
        best.offer(result['val'], model.state_dict(), model='GSTModel',
                   in_channels=in_channels, num_classes=num_classes,
                   num_segments=segmented.num_segments, seed=args.seed,
                   test=result['test'], dataset=args.dataset,
                   args={k: v for k, v in vars(args).items()
                         if isinstance(v, (str, int, float, bool,
                                           type(None)))})
    return result


def segments_per_graph(segmented: SegmentedDataset,
                       args: argparse.Namespace) -> Dict[str, float]:
    r"""The number of segments per graph (min, mean, max); warns when every
    graph is one segment."""
    count = segmented.num_segments.float()
    out = dict(min=int(count.min()), mean=float(count.mean()),
               max=int(count.max()))
    log.info('segments per graph (at most %d nodes each): min %d, mean '
             '%.2f, max %d', args.max_segment_size, out['min'],
             out['mean'], out['max'])
    if out['max'] == 1 and args.variant != 'full':
        largest = max(int(segmented[i].num_nodes)
                      for i in range(len(segmented)))
        log.warning('--max-segment-size %d leaves every graph whole (the '
                    'largest has %d nodes): %s trains on whole graphs, as '
                    "--variant full would; pass a size below %d to split "
                    'them', args.max_segment_size, largest, args.variant,
                    largest)
    return out


def load_model(path: str) -> GSTModel:
    r"""The model saved by :obj:`--save`, on the CPU, in evaluation mode.
    Its history table (variants that keep one) is empty: fill it with
    :meth:`GSTModel.refresh_table` before predicting with stale
    embeddings; :meth:`GSTModel.predict` needs none."""
    saved = common.load_saved(path)
    args = argparse.Namespace(**saved['args'])
    model = GSTModel(make_encoder(args, saved['in_channels']),
                     torch.nn.Linear(args.hidden, saved['num_classes']),
                     num_segments=saved['num_segments'],
                     variant=args.variant, keep_prob=args.keep_prob,
                     aggr=args.aggr)
    model.load_state_dict(saved['state_dict'])
    return model.eval()


def parser() -> argparse.ArgumentParser:
    p = common.make_parser(__doc__)
    p.add_argument('--dataset', default='malnet-tiny',
                   help="'malnet-tiny' or a TU dataset name (PROTEINS, NCI1, "
                   "...) under --root")
    p.add_argument('--variant', default='gst-efd', choices=VARIANTS)
    p.add_argument('--conv', default='sage', choices=['sage', 'gcn'])
    p.add_argument('--hidden', type=int, default=64, help='hidden width')
    p.add_argument('--num-layers', type=int, default=2,
                   help='encoder layers')
    p.add_argument('--batch-norm', action=argparse.BooleanOptionalAction,
                   default=True, help='batch normalization after every '
                   'encoder layer (the paper\'s configuration)')
    p.add_argument('--normalize', action=argparse.BooleanOptionalAction,
                   default=True, help='unit-length node embeddings before '
                   'pooling (the paper\'s configuration)')
    p.add_argument('--pool', default=None, choices=['sum', 'mean'],
                   help='pooling of node embeddings into a segment '
                   'embedding (default: sum, the paper\'s, for the segment '
                   'variants; mean for full)')
    p.add_argument('--aggr', default='mean', choices=['mean', 'sum'],
                   help='aggregation of segment embeddings into a graph '
                   'embedding (the paper: mean)')
    p.add_argument('--max-segment-size', type=int, default=500,
                   help='nodes per segment at most')
    p.add_argument('--segment-method', default='metis',
                   choices=SEGMENT_METHODS)
    p.add_argument('--keep-prob', type=float, default=0.5,
                   help='stale embedding dropout: keep probability')
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--finetune-epochs', type=int, default=100,
                   help='head finetuning epochs of +F (the paper: 100)')
    p.add_argument('--batch-size', type=int, default=16,
                   help='graphs per training step')
    p.add_argument('--eval-batch-size', type=int, default=64,
                   help='graphs per evaluation step')
    p.add_argument('--eval-every', type=int, default=1,
                   help='epochs between evaluations')
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--weight-decay', type=float, default=1e-4)
    p.add_argument('--scheduler', default='cosine',
                   choices=['cosine', 'constant'],
                   help='learning rate over the epochs of training and of '
                   'finetuning (the paper\'s code: cosine)')
    p.add_argument('--max-graphs', type=int, default=None,
                   help='use only this many graphs, smoke runs (default: '
                   'all)')
    common.add_common_arguments(p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    common.setup(args, level=logging.INFO)
    best = common.BestModel() if args.save else None
    results = []
    for seed in common.seeds(args):
        try:
            result = run(argparse.Namespace(**{**vars(args), 'seed': seed}),
                         best)
        except common.DatasetNotFoundError as e:
            raise SystemExit(f'train_gst.py: {e}') from None
        results.append(result)
        for key, value in result.items():
            log.info('%s: %s', key, value)
    common.print_summary(results)
    if args.json:
        common.write_json(args.json, results, args, 'train_gst')
    if args.plot:
        common.write_plot(args.plot, results, f'{args.variant} on '
                          f'{args.dataset}')
    if best is not None:
        best.save(args.save)
    return results


if __name__ == '__main__':
    main()
