r"""Every small-benchmark config builds its model and trains one epoch, GAS
and full-batch, on a synthetic stand-in for its dataset (the real datasets
are checked by running the benchmark itself)."""
import glob
import json
import os.path as osp

import pytest
import torch

from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.testing import load_script
from torch_autoscale.utils import homophilous_sbm

HERE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'small')
CONFIGS = sorted(glob.glob(osp.join(HERE, 'configs', '*.json')))


def load_runner():
    return load_script(osp.join(HERE, 'run.py'), 'small_run')


def test_every_dataset_has_the_four_reference_models():
    names = {osp.splitext(osp.basename(p))[0] for p in CONFIGS}
    for model in ('gcn', 'gat', 'appnp', 'gcnii'):
        for dataset in ('cora', 'amazon_computers', 'coauthor_cs'):
            assert f'{model}_{dataset}' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p))
def test_config_trains_one_epoch(path):
    run = load_runner()
    with open(path) as f:
        cfg = json.load(f)
    cfg['name'] = osp.splitext(osp.basename(path))[0]
    assert cfg['dataset'] in run.datasets.DATASETS
    data = homophilous_sbm(400, num_classes=4, num_features=16, seed=0)
    data.adj_t = run.prepare_adj(data, cfg.get('adj', 'raw'))
    cluster = metis(data.edge_index, data.num_nodes,
                    num_parts=cfg['num_parts'])
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    data = permute(data, perm)
    features = [data.x]
    if run.make_model(cfg, data, 4).supports_sparse_input:
        features.append(data.x.to_sparse_csr())
    for x in features:
        data.x = x
        for gas in (True, False):
            val, test, sec = run.train(cfg, data, ptr, 4, seed=0, gas=gas,
                                       epochs=1, progress=False)
            assert 0.0 <= val <= 1.0 and 0.0 <= test <= 1.0 and sec > 0


def test_sparse_features_rule():
    run = load_runner()
    x = torch.zeros(10, 10)
    x[0, :5] = 1.0  # 5% non-zero.
    assert run.use_sparse_features(x, 'auto')
    assert not run.use_sparse_features(torch.ones(10, 10), 'auto')
    assert run.use_sparse_features(torch.ones(10, 10), 'always')
    assert not run.use_sparse_features(x, 'never')
