r"""Every small-benchmark config builds its model and trains one epoch, GAS
and full-batch, on a synthetic stand-in for its dataset (the real datasets
are checked by running the benchmark itself)."""
import glob
import json
import os.path as osp

import pytest
import torch

from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.testing import load_script, onlyCUDA
from torch_autoscale.utils import homophilous_sbm

HERE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'small')
CONFIGS = sorted(glob.glob(osp.join(HERE, 'configs', '*.json')))


def load_runner():
    r"""``run.py``, whose :obj:`training` module trains the configs."""
    return load_script(osp.join(HERE, 'run.py'), 'small_run')


def test_every_dataset_has_the_four_reference_models():
    names = {osp.splitext(osp.basename(p))[0] for p in CONFIGS}
    for model in ('gcn', 'gat', 'appnp', 'gcnii'):
        for dataset in ('cora', 'amazon_computers', 'coauthor_cs'):
            assert f'{model}_{dataset}' in names


def stand_in(training, cfg):
    data = homophilous_sbm(400, num_classes=4, num_features=16, seed=0)
    data.adj_t = training.prepare_adj(data, cfg.get('adj', 'raw'))
    cluster = metis(data.edge_index, data.num_nodes,
                    num_parts=cfg['num_parts'])
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    return permute(data, perm), ptr


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p))
def test_config_trains_one_epoch(path):
    run = load_runner().training
    cfg = run.load_config(osp.splitext(osp.basename(path))[0])
    assert cfg['dataset'] in run.DATASETS
    data, ptr = stand_in(run, cfg)
    features = [data.x]
    if run.make_model(cfg, data, 4).supports_sparse_input:
        features.append(data.x.to_sparse_csr())
    for x in features:
        data.x = x
        for gas in (True, False):
            val, test, sec = run.train(cfg, data, ptr, 4, seed=0, gas=gas,
                                       epochs=1, progress=False)
            assert 0.0 <= val <= 1.0 and 0.0 <= test <= 1.0 and sec > 0


@onlyCUDA
@pytest.mark.parametrize('name', ['gcn_amazon_computers', 'appnp_cora'])
def test_config_trains_on_a_gpu_with_asynchronous_histories(name):
    run = load_runner().training
    cfg = run.load_config(name)
    data, ptr = stand_in(run, cfg)
    for gas in (True, False):
        val, test, sec = run.train(cfg, data, ptr, 4, seed=0, gas=gas,
                                   epochs=3, progress=False,
                                   device=torch.device('cuda'),
                                   pool_size=2 if gas else None)
        assert 0.0 <= val <= 1.0 and 0.0 <= test <= 1.0 and sec > 0


def test_device_options_are_checked(monkeypatch, tmp_path):
    run = load_runner()
    argv = ['run.py', '--root', str(tmp_path), '--out',
            str(tmp_path / 'small.md'), '--table-only']
    monkeypatch.setattr('sys.argv', argv + ['--pool-size', '2'])
    with pytest.raises(SystemExit):
        run.main()
    if not torch.cuda.is_available():
        monkeypatch.setattr('sys.argv', argv + ['--device', 'cuda'])
        with pytest.raises(SystemExit):
            run.main()


def test_table_names_the_device(tmp_path):
    run = load_runner()
    with open(tmp_path / 'small.jsonl', 'w') as f:
        for name, device in (('a', 'cpu'), ('b', 'NVIDIA H100')):
            for mode in ('gas', 'full'):
                f.write(json.dumps(dict(
                    config=name, model='GCN', dataset=name, epochs=1,
                    mode=mode, seed=0, val=0.8, test=0.75, sec=0.5,
                    device=device, threads=1, command='python x')) + '\n')
    text = run.write_table(str(tmp_path / 'small.jsonl'),
                           str(tmp_path / 'small.md'))
    assert ('| GCN | a | 1 | 1 | 75.00 ± 0.00 | 75.00 ± 0.00 | '
            '+0.00 ± 0.00 | +0.00 (seed 0) |' in text)
    assert '| dense | cpu | 1 | unknown |' in text
    assert '| dense | NVIDIA H100 | 1 | unknown |' in text
    assert 'python x' in text and 'skipped' not in text


def test_table_pairs_seeds(tmp_path):
    # GAS - full-batch per seed: mean ± standard error over the seeds both
    # ran, and the worst seed.
    run = load_runner()
    tests = {'gas': [0.80, 0.70, 0.82, 0.9], 'full': [0.78, 0.79, 0.80]}
    with open(tmp_path / 'small.jsonl', 'w') as f:
        for mode, values in tests.items():
            for seed, test in enumerate(values):
                f.write(json.dumps(dict(
                    config='a', model='GCN', dataset='a', epochs=1,
                    mode=mode, seed=seed, val=0.8, test=test, sec=0.5,
                    threads=1, command='python x')) + '\n')
    text = run.write_table(str(tmp_path / 'small.jsonl'),
                           str(tmp_path / 'small.md'))
    # Differences +2, -9, +2 (seed 3 has no full-batch run): mean -1.67,
    # sample std 6.35, standard error 3.67.
    assert '| -1.67 ± 3.67 | -9.00 (seed 1) |' in text


def test_sparse_features_rule():
    run = load_runner().training
    x = torch.zeros(10, 10)
    x[0, :5] = 1.0  # 5% non-zero.
    assert run.use_sparse_features(x, 'auto')
    assert not run.use_sparse_features(torch.ones(10, 10), 'auto')
    assert run.use_sparse_features(torch.ones(10, 10), 'always')
    assert not run.use_sparse_features(x, 'never')


def test_committed_results_pair_twenty_seeds_on_cora(tmp_path):
    # The committed table: every model on Cora (the Planetoid configs) has
    # GAS and full-batch runs of the same 20 seeds, every row its paired
    # difference and worst seed, and the table is rebuilt from the JSONL.
    results = osp.join(osp.dirname(HERE), 'results')
    with open(osp.join(results, 'small.jsonl')) as f:
        records = [json.loads(line) for line in f]
    seeds = {}
    for r in records:
        seeds.setdefault((r['config'], r['mode']), set()).add(r['seed'])
    cora = sorted({c for c, _ in seeds if c.endswith('_cora')})
    assert cora == ['appnp_cora', 'gat_cora', 'gcn_cora', 'gcnii_cora']
    for config in cora:
        assert seeds[config, 'gas'] == seeds[config, 'full'] == set(range(20))
    with open(osp.join(results, 'small.md')) as f:
        committed = f.read()
    rows = [line for line in committed.splitlines()
            if line.startswith('| ') and '| cora |' in line]
    assert len(rows) == 4 and all('(seed ' in row for row in rows)
    text = load_runner().write_table(osp.join(results, 'small.jsonl'),
                                     str(tmp_path / 'small.md'))
    assert text.strip() == committed.strip()
