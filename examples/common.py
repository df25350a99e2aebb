r"""What the examples share: the common command-line flags, the
node-classification datasets PyG loads from a folder (never downloading
unless asked), the JSON file of the results, the file of the best model and
the picture of the training curves (:obj:`--plot`, with matplotlib).

The examples are scripts, not a package: each puts its own folder on
:obj:`sys.path` and imports this module as :obj:`common`, which works both
for ``python examples/train_gcn.py`` and for
:func:`torch_autoscale.testing.load_script`.
"""
import argparse
import copy
import importlib
import json
import logging
import math
import os
import os.path as osp
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch
import torch_geometric.transforms as T
from torch_geometric.data.dataset import files_exist

log = logging.getLogger('examples')


# ---------------------------------------------------------------- flags ----
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    r"""Shows the default of every option that has one (:obj:`--help`),
    also of options without a help text, and keeps the description's line
    breaks."""
    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._default(action):
            action = copy.copy(action)
            action.help = self._default(action).strip()
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ''
        if '(default' in help:
            return help
        return help + self._default(action)

    @staticmethod
    def _default(action: argparse.Action) -> str:
        if action.default is argparse.SUPPRESS or not action.option_strings:
            return ''
        if isinstance(action, (argparse._StoreTrueAction,
                               argparse._StoreFalseAction)):
            return f' (default: {"on" if action.default else "off"})'
        return ' (default: %(default)s)'


def make_parser(doc: str) -> argparse.ArgumentParser:
    r"""A parser whose description is the first paragraph of :obj:`doc`.
    A later option of the same name replaces an earlier one (scripts that
    reuse an example's parser may redefine a flag)."""
    return argparse.ArgumentParser(description=doc.split('\n\n')[0],
                                   formatter_class=HelpFormatter,
                                   conflict_handler='resolve')


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_common_arguments(parser: argparse.ArgumentParser,
                         **helps: str) -> None:
    r"""The flags every example has, with the same names and defaults;
    :obj:`helps` replaces the help text of some (by destination)."""
    group = parser.add_argument_group('common to every example')

    def add(flag: str, help: str, **kwargs) -> None:
        dest = flag.lstrip('-').replace('-', '_')
        group.add_argument(flag, help=helps.get(dest, help), **kwargs)

    add('--root', default='data', help='folder holding the PyG dataset roots')
    add('--download', action='store_true',
        help='let PyG download a dataset missing from --root (needs a '
        'network); without it a missing dataset is an error naming the '
        'files to place')
    add('--seed', type=int, default=0,
        help='first seed; run i uses seed --seed + i')
    add('--runs', type=int, default=1,
        help='number of runs (seeds), reported as mean ± std')
    add('--device', default=default_device(),
        help="'cuda' when available, else 'cpu'")
    add('--threads', type=int, default=None,
        help="intra-op CPU threads (default: PyTorch's choice, "
        f"{torch.get_num_threads()} here)")
    add('--json', default=None, metavar='PATH',
        help='write the results (every run and their mean) to this JSON '
        'file (default: not written)')
    add('--save', default=None, metavar='PATH',
        help='save the model of best validation accuracy (over all runs) '
        'to this file (default: not saved)')
    add('--quiet', action='store_true', help='no progress bars')
    add('--plot', default=None, metavar='PATH',
        help='draw the training curves (loss and validation accuracy per '
        'epoch, every run) to this image file (.png, .pdf, .svg); needs '
        'matplotlib (default: not drawn)')


def setup(args: argparse.Namespace, level: int = logging.WARNING) -> None:
    r"""Checks the common flags and applies them to this process; logs at
    :obj:`level` and above."""
    if args.runs < 1:
        raise SystemExit(f'--runs must be at least 1 (got {args.runs})')
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f'--threads must be at least 1 (got '
                             f'{args.threads})')
        torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device!r}: {e}") from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device!r}: CUDA is not available "
                         f"on this machine; pass --device cpu")
    plot = getattr(args, 'plot', None)
    for path, flag in ((args.json, '--json'), (args.save, '--save'),
                       (plot, '--plot')):
        folder = osp.dirname(osp.abspath(path)) if path else None
        if folder is not None and not osp.isdir(folder):
            raise SystemExit(f'{flag} {path}: folder {folder} does not exist')
    if plot:  # Before training, not after it.
        plot_format(plot)
    logging.basicConfig(level=level, format='%(message)s')
    if args.quiet:  # The library shows some progress bars at INFO level.
        logging.getLogger('torch_autoscale').setLevel(
            max(level, logging.WARNING))
    # Sparse tensors here come from trusted kernels: opt out of invariant
    # checks explicitly (the default), which also silences PyTorch's warning.
    torch.sparse.check_sparse_tensor_invariants.disable()


def seeds(args: argparse.Namespace) -> List[int]:
    return list(range(args.seed, args.seed + args.runs))


# ------------------------------------------------------------- datasets ----
class DatasetNotFoundError(FileNotFoundError):
    r"""A dataset is neither processed nor has its raw files under the
    root, and downloading was not allowed."""


def offline(cls: type, download: bool = False, hint: str = '') -> type:
    r"""A subclass of the PyG dataset class :obj:`cls` that loads what is on
    disk and raises :class:`DatasetNotFoundError`, naming the folder and the
    files, instead of downloading (PyG would wait on the network). Processed
    files alone suffice. With :obj:`download`, PyG downloads as usual."""
    def _download(self):
        if files_exist(self.raw_paths):
            return
        if not self.force_reload and files_exist(self.processed_paths):
            return  # Already processed: the raw files are not needed.
        if download:
            return cls._download(self)
        missing = [osp.basename(p) for p in self.raw_paths
                   if not osp.exists(p)]
        raise DatasetNotFoundError(
            f"{cls.__name__} not found: expected {', '.join(missing)} in "
            f"{self.raw_dir} (or its processed files in "
            f"{self.processed_dir}). Place the raw files there, point "
            f"--root at the folder holding them, or pass --download on a "
            f"machine with a network.{hint}")

    return type(cls.__name__, (cls, ), dict(_download=_download,
                                            __module__=__name__,
                                            __qualname__=cls.__qualname__))


@dataclass(frozen=True)
class NodeDataset:
    r"""How to load a node-classification dataset: the PyG class, the folder
    under :obj:`--root` that is its root, its arguments, and whether it
    brings its own splits (masks) or gets a random one."""
    cls: str
    folder: str
    kwargs: Dict[str, Any] = field(default_factory=dict)
    masks: bool = True


#: Every node-classification dataset :obj:`--dataset` takes (besides the
#: generated :obj:`synthetic`). Datasets without public splits get 20
#: training and 30 validation nodes per class (Shchur et al.); those with
#: several splits use split :obj:`seed % num_splits`.
NODE_DATASETS: Dict[str, NodeDataset] = {
    'cora': NodeDataset('Planetoid', 'Planetoid', dict(name='Cora')),
    'citeseer': NodeDataset('Planetoid', 'Planetoid', dict(name='CiteSeer')),
    'pubmed': NodeDataset('Planetoid', 'Planetoid', dict(name='PubMed')),
    'amazon-computers': NodeDataset('Amazon', 'Amazon',
                                    dict(name='Computers'), masks=False),
    'amazon-photo': NodeDataset('Amazon', 'Amazon', dict(name='Photo'),
                                masks=False),
    'coauthor-cs': NodeDataset('Coauthor', 'Coauthor', dict(name='CS'),
                               masks=False),
    'coauthor-physics': NodeDataset('Coauthor', 'Coauthor',
                                    dict(name='Physics'), masks=False),
    'wikics': NodeDataset('WikiCS', 'WikiCS', dict(is_undirected=True)),
    'cora-full': NodeDataset('CitationFull', 'CitationFull',
                             dict(name='Cora'), masks=False),
    'cora-ml': NodeDataset('CitationFull', 'CitationFull',
                           dict(name='Cora_ML'), masks=False),
    'dblp': NodeDataset('CitationFull', 'CitationFull', dict(name='DBLP'),
                        masks=False),
    'roman-empire': NodeDataset('HeterophilousGraphDataset', '',
                                dict(name='Roman-empire')),
    'amazon-ratings': NodeDataset('HeterophilousGraphDataset', '',
                                  dict(name='Amazon-ratings')),
    'minesweeper': NodeDataset('HeterophilousGraphDataset', '',
                               dict(name='Minesweeper')),
    'tolokers': NodeDataset('HeterophilousGraphDataset', '',
                            dict(name='Tolokers')),
    'questions': NodeDataset('HeterophilousGraphDataset', '',
                             dict(name='Questions')),
    'cornell': NodeDataset('WebKB', 'WebKB', dict(name='Cornell')),
    'texas': NodeDataset('WebKB', 'WebKB', dict(name='Texas')),
    'wisconsin': NodeDataset('WebKB', 'WebKB', dict(name='Wisconsin')),
    'chameleon': NodeDataset('WikipediaNetwork', 'WikipediaNetwork',
                             dict(name='chameleon')),
    'squirrel': NodeDataset('WikipediaNetwork', 'WikipediaNetwork',
                            dict(name='squirrel')),
    'actor': NodeDataset('Actor', 'Actor'),
    'flickr': NodeDataset('Flickr', 'Flickr'),
    'reddit': NodeDataset('Reddit', 'Reddit'),
    'reddit2': NodeDataset('Reddit2', 'Reddit2'),
    'lastfm-asia': NodeDataset('LastFMAsia', 'LastFMAsia', masks=False),
    'facebook': NodeDataset('FacebookPagePage', 'FacebookPagePage',
                            masks=False),
    'github': NodeDataset('GitHub', 'GitHub', masks=False),
    'deezer-europe': NodeDataset('DeezerEurope', 'DeezerEurope',
                                 masks=False),
}


def dataset_name(value: str) -> str:
    r"""Normalizes a :obj:`--dataset` value: case and :obj:`_` do not matter
    (:obj:`Cora`, :obj:`coauthor_cs`)."""
    return value.strip().lower().replace('_', '-')


def _pyg_class(spec: NodeDataset) -> type:
    cls = getattr(importlib.import_module('torch_geometric.datasets'),
                  spec.cls)
    if spec.cls == 'HeterophilousGraphDataset':
        cls = _heterophilous(cls)
    return cls


def _heterophilous(base: type) -> type:
    r"""PyG keeps these graphs in :obj:`root/<lowercase name>/`; the offline
    archives use :obj:`root/<Name>/` (:obj:`Tolokers/raw/tolokers.npz`).
    Takes whichever exists, PyG's by default."""
    def folder(self) -> str:
        for name in (self.name, self.name.replace('_', '-').capitalize()):
            if osp.isdir(osp.join(self.root, name)):
                return osp.join(self.root, name)
        return osp.join(self.root, self.name)

    return type(base.__name__, (base, ), dict(
        raw_dir=property(lambda self: osp.join(folder(self), 'raw')),
        processed_dir=property(
            lambda self: osp.join(folder(self), 'processed')),
        __module__=__name__, __qualname__=base.__qualname__))


def load_node_dataset(name: str, root: str, seed: int = 0,
                      download: bool = False):
    r"""The graph of a node-classification dataset of :obj:`NODE_DATASETS`
    with one-dimensional :obj:`train_mask`, :obj:`val_mask` and
    :obj:`test_mask`, nodes in the dataset's order.

    Raises:
        ValueError: If :obj:`name` is not in :obj:`NODE_DATASETS` (the
            message lists them).
        DatasetNotFoundError: If the dataset is not under :obj:`root` and
            :obj:`download` is off.
    """
    key = dataset_name(name)
    if key not in NODE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of "
                         f"{', '.join(sorted(NODE_DATASETS))}")
    spec = NODE_DATASETS[key]
    cls = offline(_pyg_class(spec), download)
    data = cls(osp.join(root, spec.folder), **spec.kwargs)[0]
    if not spec.masks:
        return random_split(data, seed)
    for split in ('train', 'val', 'test'):  # Several splits: pick one.
        mask = data[f'{split}_mask']
        if mask.dim() == 2:
            data[f'{split}_mask'] = mask[:, seed % mask.size(1)]
    return data


def random_split(data, seed: int):
    r"""Without public splits: 20 training and 30 validation nodes per class,
    the rest for testing (Shchur et al.'s protocol, as in GNNAutoScale)."""
    num_classes = int(data.y.max()) + 1
    num_val = 30 * num_classes
    num_test = data.num_nodes - num_val - 20 * num_classes
    torch.manual_seed(seed)
    return T.RandomNodeSplit('random', num_train_per_class=20,
                             num_val=num_val, num_test=num_test)(data)


# -------------------------------------------------------------- results ----
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    r"""One dictionary for several runs: values every run agrees on as they
    are, numbers that differ as their mean with :obj:`<key>_std` next to
    them, the rest (curves) only in :obj:`runs`. With one run the top level
    is that run's result."""
    out: Dict[str, Any] = {}
    for key in results[0]:
        if key == 'seed':  # Listed in 'seeds'.
            continue
        values = [r.get(key) for r in results]
        if all(v == values[0] for v in values):
            out[key] = values[0]
        elif all(_is_number(v) for v in values):
            out[key] = statistics.mean(values)
            out[f'{key}_std'] = statistics.stdev(values)
    out['seeds'] = [r.get('seed') for r in results]
    out['runs'] = results
    return out


def _finite(value: Any) -> Any:
    r"""JSON has no NaN or infinity: those become :obj:`None`."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str, results: List[Dict[str, Any]],
               args: argparse.Namespace, example: str) -> None:
    r"""Writes :func:`summarize` of the runs, the example's name, its command
    line and every option to :obj:`path` (replaced atomically)."""
    out = dict(example=example, command=' '.join(
        [osp.basename(sys.argv[0])] + sys.argv[1:]), args=vars(args))
    out.update(summarize(results))
    _replace(path, lambda f: json.dump(_finite(out), f, indent=1),
             mode='w')


def print_summary(results: List[Dict[str, Any]],
                  keys=('val', 'test')) -> None:
    if len(results) > 1:
        text = '  '.join(
            f'{key} {100 * statistics.mean(r[key] for r in results):.2f} ± '
            f'{100 * statistics.stdev(r[key] for r in results):.2f}'
            for key in keys)
        print(f'over {len(results)} runs (%): {text}')


# ---------------------------------------------------------------- plots ----
def pyplot():
    r"""matplotlib's :obj:`pyplot` on its file-only backend, imported only
    when :obj:`--plot` is given; without matplotlib, an error saying how to
    install it."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            '--plot needs matplotlib, which is not installed: pip install '
            "matplotlib (or the package's extra: pip install "
            "'torch_autoscale[plot]')") from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_format(path: str) -> str:
    r"""The image format of :obj:`path`, from its extension; an error
    listing the formats matplotlib writes for any other."""
    pyplot()
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    ext = osp.splitext(path)[1].lstrip('.').lower()
    if ext not in formats:
        raise SystemExit(f"--plot {path}: unknown image format {ext!r}: "
                         f"end the name with one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    return ext


def _points(curve: List[Any]) -> List[tuple]:
    r"""(epoch, value) pairs of a curve given as one value per epoch or as
    (epoch, value) pairs."""
    return [tuple(item) if isinstance(item, (list, tuple)) else (i + 1, item)
            for i, item in enumerate(curve)]


def write_plot(path: str, results: List[Dict[str, Any]],
               title: str) -> None:
    r"""Draws the training loss (:obj:`loss_curve`) and the validation
    accuracy (:obj:`val_curve`) per epoch of every run to the image file
    :obj:`path` (replaced atomically)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    for result in results:
        label = f"seed {result.get('seed')}"
        for ax, key, scale in ((axes[0], 'loss_curve', 1.0),
                               (axes[1], 'val_curve', 100.0)):
            points = _points(result.get(key) or [])
            ax.plot([e for e, _ in points], [scale * v for _, v in points],
                    marker='.' if len(points) < 30 else None, label=label)
    axes[0].set_ylabel('training loss (mean over steps)')
    axes[1].set_ylabel('validation accuracy (%)')
    for ax in axes:
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
    if len(results) > 1:
        axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        _replace(path, lambda f: fig.savefig(f, format=plot_format(path)))
    finally:
        plt.close(fig)
    print(f'wrote the training curves to {path}')


def _replace(path: str, write: Callable, mode: str = 'wb') -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    try:
        with open(tmp, mode) as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


class BestModel:
    r"""Keeps the model state of best validation accuracy over all runs and
    saves it to one file: :obj:`state_dict` and :obj:`val`, plus whatever
    the example needs to rebuild the model (its class and constructor
    arguments), all loadable with :obj:`torch.load(path,
    weights_only=True)`."""
    def __init__(self):
        self.val = -math.inf
        self.content: Optional[Dict[str, Any]] = None

    def offer(self, val: float, state_dict: Dict[str, Any],
              **meta: Any) -> None:
        if self.content is None or val > self.val:
            self.val = val
            state = {k: v.detach().cpu().clone()
                     for k, v in state_dict.items()}
            self.content = dict(state_dict=state, val=val, **meta)

    def save(self, path: str) -> None:
        if self.content is None:
            raise RuntimeError('no model to save: no run finished')
        _replace(path, lambda f: torch.save(self.content, f))
        print(f"saved the model of best validation accuracy (seed "
              f"{self.content.get('seed')}, val {self.val:.4f}) to {path}")


def load_saved(path: str) -> Dict[str, Any]:
    r"""The contents of a file written by :meth:`BestModel.save`."""
    return torch.load(path, map_location='cpu', weights_only=True)
