r"""``benchmark/small/run.py --curves``: validation and test accuracy after
every epoch, GAS and full-batch, on a synthetic stand-in for Cora (the real
run is ``benchmark/results/small_curves.md``)."""
import json
import os.path as osp

import pytest

from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.testing import load_script
from torch_autoscale.utils import homophilous_sbm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.join(ROOT, 'benchmark', 'small')
COMMITTED = osp.join(ROOT, 'benchmark', 'results', 'small_curves',
                     'gcn_cora.json')


def load_runner():
    return load_script(osp.join(HERE, 'run.py'), 'small_run_curves')


def stand_in(run, cfg, seed=0):
    data = homophilous_sbm(400, num_classes=4, num_features=16, seed=seed)
    data.adj_t = run.prepare_adj(data, cfg.get('adj', 'raw'))
    cluster = metis(data.edge_index, data.num_nodes,
                    num_parts=cfg['num_parts'])
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    return permute(data, perm), ptr, 4


@pytest.mark.parametrize('gas', [True, False])
def test_train_records_accuracy_after_every_epoch(gas):
    run = load_runner()
    cfg = run.load_config('gcn_cora')
    data, ptr, num_classes = stand_in(run, cfg)
    record = {}
    val, test, _ = run.train(cfg, data, ptr, num_classes, seed=0, gas=gas,
                             epochs=4, progress=False, record=record)
    assert sorted(record) == ['test_curve', 'val_curve']
    assert len(record['val_curve']) == len(record['test_curve']) == 4
    best = record['val_curve'].index(max(record['val_curve']))
    assert record['val_curve'][best] == pytest.approx(val, abs=1e-6)
    assert record['test_curve'][best] == pytest.approx(test, abs=1e-6)
    # The same seed without recording trains the same model.
    assert run.train(cfg, data, ptr, num_classes, seed=0, gas=gas, epochs=4,
                     progress=False)[:2] == (val, test)


def test_curves_option_end_to_end(monkeypatch, tmp_path):
    run = load_runner()
    monkeypatch.setattr(run.datasets, 'available', lambda root, name: True)
    monkeypatch.setattr(run, 'prepare', lambda cfg, root, seed, *args:
                        stand_in(run, cfg, seed))
    out, table = tmp_path / 'curves', tmp_path / 'curves.md'
    argv = ['run.py', '--root', str(tmp_path), '--configs', 'gcn_cora',
            '--seeds', '2', '--epochs', '3', '--quiet', '--curves',
            '--out-dir', str(out), '--table', str(table)]
    monkeypatch.setattr('sys.argv', argv)
    run.main()
    with open(out / 'gcn_cora.json') as f:
        result = json.load(f)
    assert result['seeds'] == [0, 1] and result['epochs'] == 3
    for mode in ('gas', 'full'):
        for r in result[mode]:
            assert len(r['val_curve']) == len(r['test_curve']) == 3
            assert max(r['val_curve']) == pytest.approx(r['val'], abs=1e-6)
    text = table.read_text()
    assert '--curves' in text.split('```')[1]  # The command, on top.
    assert '| GCN | cora | GAS | 2 | 3 |' in text
    assert '| GCN | cora | full-batch | 2 | 3 |' in text

    # --skip-done keeps finished seeds with curves, but redoes seeds that
    # were recorded without them.
    for r in result['gas'] + result['full']:
        r['marker'] = True
    with open(out / 'gcn_cora.json', 'w') as f:
        json.dump(result, f)
    monkeypatch.setattr('sys.argv', argv + ['--skip-done'])
    run.main()
    with open(out / 'gcn_cora.json') as f:
        assert all(r.get('marker') for r in json.load(f)['gas'])
    for r in result['gas'] + result['full']:
        del r['val_curve']
    with open(out / 'gcn_cora.json', 'w') as f:
        json.dump(result, f)
    run.main()
    with open(out / 'gcn_cora.json') as f:
        redone = json.load(f)
    assert all('val_curve' in r and 'marker' not in r
               for r in redone['gas'] + redone['full'])


def test_curves_default_to_their_own_results(monkeypatch):
    # --curves never writes over the results of results/small.md.
    run = load_runner()
    written = {}
    monkeypatch.setattr(run, 'write_curves_table', lambda out_dir, table:
                        written.update(out_dir=out_dir, table=table) or '')
    monkeypatch.setattr('sys.argv', ['run.py', '--curves', '--table-only'])
    run.main()
    results = osp.join(ROOT, 'benchmark', 'results')
    assert written == dict(out_dir=osp.join(results, 'small_curves'),
                           table=osp.join(results, 'small_curves.md'))


def test_committed_curves():
    with open(COMMITTED) as f:
        result = json.load(f)
    assert '--curves' in result['command']
    assert len(result['seeds']) >= 3
    for mode in ('gas', 'full'):
        assert len(result[mode]) == len(result['seeds'])
        for r in result[mode]:
            assert len(r['val_curve']) == result['epochs']
            assert max(r['val_curve']) == pytest.approx(r['val'], abs=1e-6)
    with open(osp.join(ROOT, 'benchmark', 'results', 'small_curves.md')) as f:
        assert result['command'] in f.read()
