r"""Dataset loading for the small benchmark, through PyG's dataset classes.

Planetoid sets use their public split and row-normalized features (as the
GNNAutoScale reference code and the GAT and GCNII papers do). Sets without
one (Amazon, Coauthor, WikiCS) get a random split per seed: 20 training and
30 validation nodes per class, the rest for testing (the protocol of Shchur
et al. that GNNAutoScale follows).
"""
import os.path as osp
from typing import Optional

import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

# name -> (class name, root sub-folder, dataset name, PyG raw folder to probe)
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


def load(root: str, name: str, seed: int) -> Optional[Data]:
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
