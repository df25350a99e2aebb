r"""What the small-benchmark scripts share: datasets, configs, the prepared
graph and the training loops of GAS and full-batch training.

Datasets are loaded through PyG's dataset classes from ``--root`` (nothing
is downloaded). Planetoid sets use their public split and row-normalized
features (as the GNNAutoScale reference code and the GAT and GCNII papers
do). Sets without one (Amazon, Coauthor, WikiCS) get a random split per
seed: 20 training and 30 validation nodes per class, the rest for testing
(the protocol of Shchur et al. that GNNAutoScale follows).

Every config in ``configs/`` holds the reference hyperparameters of one
model on one dataset (those of the GAS paper's code). The scripts that
import this module put ``benchmark/`` on :obj:`sys.path` first, for
:mod:`bench_util`.
"""
import argparse
import glob
import json
import logging
import os.path as osp
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_remaining_self_loops, remove_self_loops
from tqdm import tqdm

import torch_autoscale.nn.models as models
from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.partition import (
    metis,
    partition,
    permute,
    sort_by_cluster,
)
from torch_autoscale.utils import csr_adj_t, sparsify_features

import bench_util  # From benchmark/, which the importer put on sys.path.

HERE = osp.dirname(osp.abspath(__file__))
log = logging.getLogger('small')

# name -> (PyG class name, root sub-folder, dataset name)
DATASETS = {
    'cora': ('Planetoid', 'Planetoid', 'Cora'),
    'citeseer': ('Planetoid', 'Planetoid', 'CiteSeer'),
    'pubmed': ('Planetoid', 'Planetoid', 'PubMed'),
    'amazon-computers': ('Amazon', 'Amazon', 'Computers'),
    'amazon-photo': ('Amazon', 'Amazon', 'Photo'),
    'coauthor-cs': ('Coauthor', 'Coauthor', 'CS'),
    'coauthor-physics': ('Coauthor', 'Coauthor', 'Physics'),
    'wikics': ('WikiCS', 'WikiCS', None),
}

# Datasets ####################################################################


def raw_dir(root: str, name: str) -> str:
    _, folder, sub = DATASETS[name]
    if name == 'wikics':
        return osp.join(root, folder, 'raw')
    return osp.join(root, folder, sub, 'raw')


def available(root: str, name: str) -> bool:
    r"""Whether the raw files of :obj:`name` are present under :obj:`root`
    (the benchmark never downloads)."""
    return osp.isdir(raw_dir(root, name))


def random_split(data: Data, seed: int, num_train_per_class: int = 20,
                 num_val_per_class: int = 30) -> Data:
    num_classes = int(data.y.max()) + 1
    num_val = num_val_per_class * num_classes
    num_test = data.num_nodes - num_val - num_train_per_class * num_classes
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    data = T.RandomNodeSplit('random', num_train_per_class=num_train_per_class,
                             num_val=num_val, num_test=num_test)(data)
    torch.set_rng_state(state)
    return data


def load_dataset(root: str, name: str, seed: int) -> Data:
    r"""Loads :obj:`name` from :obj:`root`; random splits depend on
    :obj:`seed`."""
    import torch_geometric.datasets as D
    cls, folder, sub = DATASETS[name]
    if cls == 'Planetoid':
        return D.Planetoid(osp.join(root, folder), sub,
                           transform=T.NormalizeFeatures())[0]
    if cls == 'WikiCS':
        data = D.WikiCS(osp.join(root, folder))[0]
        data.train_mask = data.train_mask[:, seed % data.train_mask.size(1)]
        data.val_mask = data.val_mask[:, seed % data.val_mask.size(1)]
        return data
    data = getattr(D, cls)(osp.join(root, folder), sub)[0]
    return random_split(data, seed)


# Configs and the prepared graph ##############################################


def config_names() -> List[str]:
    r"""The names of all configs, sorted."""
    return sorted(osp.splitext(osp.basename(p))[0]
                  for p in glob.glob(osp.join(HERE, 'configs', '*.json')))


def load_config(name: str) -> Dict[str, Any]:
    r"""The config :obj:`configs/{name}.json`, with its :obj:`name`."""
    with open(osp.join(HERE, 'configs', f'{name}.json')) as f:
        return dict(json.load(f), name=name)


def prepare_adj(data, kind: str):
    r"""The full-graph adjacency the model expects: ``gcn_norm`` (symmetric
    normalization with self-loops, computed before partitioning so every
    batch sees full-graph degrees), ``self_loops`` or ``raw``."""
    edge_index, _ = remove_self_loops(data.edge_index)
    if kind == 'gcn_norm':
        adj_t, _ = gcn_norm(csr_adj_t(edge_index, data.num_nodes))
        return adj_t
    if kind == 'self_loops':
        edge_index, _ = add_remaining_self_loops(edge_index,
                                                 num_nodes=data.num_nodes)
    elif kind != 'raw':
        raise ValueError(f"unknown adjacency kind '{kind}'")
    return csr_adj_t(edge_index, data.num_nodes)


def prepare_features(x, mode: str):
    r"""The node features handed to the models: as a sparse CSR matrix
    always, never, or (:obj:`"auto"`) when at most 10% of them are non-zero,
    as for bag-of-words features. Dropout and the first linear layer then
    cost time in proportion to the non-zeros, in GAS and full-batch alike."""
    if mode == 'auto':
        return sparsify_features(x)
    return x.to_sparse_csr() if mode == 'always' else x


def use_sparse_features(x, mode: str) -> bool:
    r"""Whether :func:`prepare_features` makes :obj:`x` sparse."""
    return prepare_features(x, mode).layout == torch.sparse_csr


def prepare(cfg: Dict[str, Any], root: str, seed: int,
            sparse_mode: str = 'auto', method: str = 'metis',
            partition_seed: bool = False):
    r"""Loads the config's dataset (split by :obj:`seed`), builds its
    adjacency, clusters it and lays every cluster out contiguously.
    METIS uses its fixed default seed (the same clusters for every seed, as
    the GAS reference code) unless :obj:`partition_seed` hands it
    :obj:`seed`.

    Returns:
        The permuted graph, the cluster boundaries and the number of
        classes.
    """
    data = load_dataset(root, cfg['dataset'], seed)
    num_classes = int(data.y.max()) + 1
    data.adj_t = prepare_adj(data, cfg.get('adj', 'raw'))
    if method == 'metis' and partition_seed:
        cluster = metis(data.edge_index, data.num_nodes, cfg['num_parts'],
                        seed=seed)
    else:
        cluster = partition(data.edge_index, cfg['num_parts'],
                            method=method, num_nodes=data.num_nodes,
                            seed=seed)
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    data = permute(data, perm)
    data.x = prepare_features(data.x, sparse_mode)
    return data, ptr, num_classes


# Training ####################################################################


def make_model(cfg: Dict[str, Any], data, num_classes: int, **extra: Any):
    r"""The config's model; :obj:`extra` are further arguments of
    :class:`~torch_autoscale.nn.ScalableGNN` (*e.g.*, :obj:`pool_size`)."""
    cls = getattr(models, cfg['model'])
    kwargs = dict(cfg['model_kwargs'], **extra)
    if cfg['model'] in ('PNA', 'PNA_JK'):
        kwargs['deg'] = cls.degree_histogram(data.adj_t, data.num_nodes)
    return cls(num_nodes=data.num_nodes, in_channels=data.num_features,
               out_channels=num_classes, **kwargs)


def accuracy(out, y, mask) -> float:
    return float((out[mask].argmax(-1) == y[mask]).float().mean())


def step(model, optimizer, out, y, mask, grad_clip) -> torch.Tensor:
    r"""One optimizer step on the loss of :obj:`out` at :obj:`mask`;
    returns the cross-entropy (without the regularizer), detached, on the
    device (reading it would wait for the device)."""
    loss = F.cross_entropy(out[mask], y[mask])
    (loss + model.reg_loss).backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


def gas_epoch(model, optimizer, loader, clip: Optional[float],
              device: Optional[torch.device] = None,
              rows: Optional[List[int]] = None) -> torch.Tensor:
    r"""One GAS training epoch over :obj:`loader`: a step per mini-batch
    with training nodes; appends every mini-batch's node count (with halo)
    to :obj:`rows` if given. Returns the training loss of the epoch, the
    mini-batches' losses weighted by their training nodes (a tensor on the
    device)."""
    total, nodes = torch.zeros(()), 0
    for batch in loader:
        if rows is not None:
            rows.append(int(batch.n_id.numel()))
        if device is not None:
            batch = batch.to(device, non_blocking=True)
        optimizer.zero_grad()
        out = model(batch.data.x, batch.data.adj_t, batch)
        bs = batch.batch_size
        mask = batch.data.train_mask[:bs]
        if bool(mask.any()):
            count = int(mask.sum())
            total = total.to(out.device) + count * step(
                model, optimizer, out[:bs], batch.data.y[:bs], mask, clip)
            nodes += count
    return total / max(nodes, 1)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    r""":obj:`"cpu"`, or the name of the GPU."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return device.type


def train(cfg, data, ptr, num_classes, seed: int, gas: bool,
          epochs: int, progress: bool,
          device: torch.device = torch.device('cpu'),
          pool_size: Optional[int] = None,
          record: Optional[Dict[str, List[float]]] = None,
          warm_up: bool = True) -> Tuple[float, float, float]:
    r"""Trains one model, GAS or full-batch, on :obj:`device` and returns
    the best validation accuracy, the test accuracy at that epoch and the
    mean training seconds per epoch. GAS keeps its histories in host memory;
    with :obj:`pool_size` (a GPU only) their transfers run asynchronously
    through the model's :class:`~torch_autoscale.history.AsyncIOPool`.
    With :obj:`record`, the training loss of every epoch and the
    validation and test accuracy after it are appended to its lists
    :obj:`"loss_curve"`, :obj:`"val_curve"` and :obj:`"test_curve"`.

    GAS fills every history by layer-wise inference before the first epoch
    (:obj:`warm_up`, as the GAS reference's large benchmark does; without
    it, the first epoch reads zeros for halo nodes not yet pushed), and
    every evaluation refreshes them all."""
    torch.manual_seed(seed)
    extra: Dict[str, Any] = {}
    if gas:
        loader = SubgraphLoader(data, ptr, batch_size=cfg['batch_size'],
                                shuffle=True)
        eval_loader = EvalSubgraphLoader(data, ptr,
                                         batch_size=cfg['batch_size'])
        if pool_size is not None:
            extra = dict(pool_size=pool_size, buffer_size=max(
                loader.required_buffer_size(),
                eval_loader.required_buffer_size()))
    else:
        full = data.to(device)
    model = make_model(cfg, data, num_classes, **extra).to(device)
    groups = model.param_groups(cfg['weight_decay'],
                                cfg.get('nonreg_weight_decay', 0.0))
    optimizer = torch.optim.Adam(groups, lr=cfg['lr'])
    clip = cfg.get('grad_clip')
    if gas and warm_up:
        model.mini_inference(eval_loader, progress=False)

    best_val, test_acc, times = -1.0, 0.0, []
    name = 'GAS' if gas else 'full'
    for _ in tqdm(range(epochs), desc=f"{cfg['name']} {name} seed {seed}",
                  disable=not progress, leave=False):
        model.train()
        synchronize(device)
        start = time.perf_counter()
        if gas:
            loss = gas_epoch(model, optimizer, loader, clip, device)
        else:
            optimizer.zero_grad()
            out = model(full.x, full.adj_t)
            loss = step(model, optimizer, out, full.y, full.train_mask, clip)
        synchronize(device)
        times.append(time.perf_counter() - start)

        with torch.no_grad():
            if gas:
                out = model.mini_inference(eval_loader, progress=False)
            else:
                out = model.eval()(full.x, full.adj_t).cpu()
        val_acc = accuracy(out, data.y, data.val_mask)
        if record is not None:
            # Accuracies are multiples of 1 / (mask size): 6 digits keep
            # them exact enough and the results small.
            record.setdefault('loss_curve', []).append(
                round(float(loss), 6))
            record.setdefault('val_curve', []).append(round(val_acc, 6))
            record.setdefault('test_curve', []).append(
                round(accuracy(out, data.y, data.test_mask), 6))
        if val_acc > best_val:
            best_val = val_acc
            test_acc = accuracy(out, data.y, data.test_mask)
    # The first epoch includes one-off warm-up; report the rest.
    sec = statistics.mean(times[1:]) if len(times) > 1 else times[0]
    return best_val, test_acc, sec


class Trainer:
    r"""One model and its optimizer, trained epoch by epoch in one mode:
    :obj:`"full"` (full-batch), :obj:`"gas"`, or any other GAS mode that
    the caller then changes (*e.g.*, history access removed)."""
    def __init__(self, mode: str, cfg: Dict[str, Any], data, ptr,
                 num_classes: int, seed: int):
        self.mode, self.cfg, self.data = mode, cfg, data
        torch.manual_seed(seed)
        self.model = make_model(cfg, data, num_classes)
        groups = self.model.param_groups(cfg['weight_decay'],
                                         cfg.get('nonreg_weight_decay', 0.0))
        self.optimizer = torch.optim.Adam(groups, lr=cfg['lr'])
        self.loader: Optional[SubgraphLoader] = None
        self.rows: List[int] = []  # Nodes of every mini-batch with halo.
        if mode != 'full':
            self.loader = SubgraphLoader(data, ptr,
                                         batch_size=cfg['batch_size'],
                                         shuffle=True)
            # Fill the histories, as train() does before training.
            self.model.mini_inference(
                EvalSubgraphLoader(data, ptr, batch_size=cfg['batch_size']),
                progress=False)

    def epoch(self) -> float:
        r"""Trains one epoch and returns its seconds."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        model.train()
        start = time.perf_counter()
        if self.loader is None:
            optimizer.zero_grad()
            out = model(self.data.x, self.data.adj_t)
            step(model, optimizer, out, self.data.y, self.data.train_mask,
                 cfg.get('grad_clip'))
        else:
            gas_epoch(model, optimizer, self.loader, cfg.get('grad_clip'),
                      rows=self.rows)
        return time.perf_counter() - start


# Side-by-side CPU timings ####################################################


def timing_main(script: str, doc: str, name: str, default_configs: List[str],
                measure: Callable, table: Callable,
                argv: Optional[List[str]] = None) -> str:
    r"""The command line of a side-by-side CPU timing script over configs
    (``overhead.py``, ``transpose.py``): runs :obj:`measure` on every config
    whose dataset is present, appends one record per config to the JSONL
    file beside the table and writes :obj:`table`'s table of all records.

    Args:
        script (str): The script's path.
        doc (str): Its documentation (the first paragraph describes it).
        name (str): The default table, ``benchmark/results/{name}.md``.
        default_configs (List[str]): The configs it measures by default.
        measure (Callable): :obj:`measure(cfg, data, ptr, num_classes,
            epochs)` returns a record.
        table (Callable): :obj:`table(records)` returns the table's title
            and body lines.
        argv (List[str], optional): The arguments (default: the process').
    """
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('--root', default='data')
    parser.add_argument('--configs', nargs='+', default=default_configs)
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    bench_util.add_output_options(parser, name, skip_done=False)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    jsonl = bench_util.jsonl_path(args.out)
    if not args.table_only:
        torch.set_num_threads(args.threads)
        torch.sparse.check_sparse_tensor_invariants.disable()
        command = bench_util.command_line(script, argv)
        known = bench_util.provenance()
        for config in args.configs:
            cfg = load_config(config)
            if not available(args.root, cfg['dataset']):
                log.warning("skipping '%s': dataset '%s' not found under "
                            "'%s'", config, cfg['dataset'], args.root)
                continue
            data, ptr, num_classes = prepare(cfg, args.root, seed=0)
            result = measure(cfg, data, ptr, num_classes, args.epochs)
            result.update(threads=args.threads, command=command, **known)
            # A config measured again replaces its earlier record.
            bench_util.drop_jsonl(jsonl, lambda r: r['config'] == config)
            bench_util.append_jsonl(jsonl, result)
            log.info(json.dumps({k: v for k, v in result.items()
                                 if k != 'seconds'}))
    return bench_util.write_table(args.out, table)

