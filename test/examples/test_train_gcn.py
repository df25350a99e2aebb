import argparse
import os.path as osp

import pytest

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_example():
    return load_script(osp.join(ROOT, 'examples', 'train_gcn.py'), 'train_gcn')


def make_args(module, dataset, root='data', **kwargs):
    args = argparse.Namespace(dataset=dataset, root=root, num_layers=2,
                              runs=1, num_workers=0, device='cpu',
                              quiet=True, partition='metis')
    for key, value in module.DEFAULTS[dataset].items():
        setattr(args, key, value)
    for key, value in kwargs.items():
        setattr(args, key, value)
    return args


@pytest.mark.parametrize('partition', ['metis', 'lpmetis'])
def test_synthetic_demo_far_above_chance(partition):
    module = load_example()
    args = make_args(module, 'synthetic', epochs=15, partition=partition)
    train_acc, val_acc, test_acc, sec = module.run(args, seed=0)
    assert test_acc > 0.6  # eight classes: chance is 0.125
    assert sec > 0


def test_cora_reference_accuracy(cora_root):
    # One seed of the committed five-seed result (benchmark/results).
    module = load_example()
    args = make_args(module, 'cora', root=cora_root)
    _, val_acc, test_acc, _ = module.run(args, seed=0)
    assert val_acc > 0.77
    assert test_acc > 0.79


def test_unknown_dataset():
    module = load_example()
    with pytest.raises(ValueError, match='unknown dataset'):
        module.load_dataset('pubmed', 'data', 0)
