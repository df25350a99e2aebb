r"""``benchmark/small/run.py --curves``: validation and test accuracy after
every epoch, GAS and full-batch, on a synthetic stand-in for Cora (the real
run is ``benchmark/results/small_curves.md``)."""
import argparse
import json
import os.path as osp

import pytest

import torch

from torch_autoscale.history import History
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.testing import load_script
from torch_autoscale.utils import homophilous_sbm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.join(ROOT, 'benchmark', 'small')
COMMITTED = osp.join(ROOT, 'benchmark', 'results', 'small_curves.jsonl')


def load_runner():
    return load_script(osp.join(HERE, 'run.py'), 'small_run_curves')


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def stand_in(training, cfg, seed=0):
    data = homophilous_sbm(400, num_classes=4, num_features=16, seed=seed)
    data.adj_t = training.prepare_adj(data, cfg.get('adj', 'raw'))
    cluster = metis(data.edge_index, data.num_nodes,
                    num_parts=cfg['num_parts'])
    perm, ptr = sort_by_cluster(cluster, cfg['num_parts'])
    del data.edge_index
    return permute(data, perm), ptr, 4


@pytest.fixture
def stand_in_runner(monkeypatch):
    r"""``run.py`` with every dataset a synthetic stand-in."""
    run = load_runner()
    training = run.training
    monkeypatch.setattr(training, 'available', lambda root, name: True)
    monkeypatch.setattr(training, 'prepare', lambda cfg, root, seed, *args:
                        stand_in(training, cfg, seed))
    return run


@pytest.mark.parametrize('gas', [True, False])
def test_train_records_accuracy_after_every_epoch(gas):
    run = load_runner().training
    cfg = run.load_config('gcn_cora')
    data, ptr, num_classes = stand_in(run, cfg)
    record = {}
    val, test, _ = run.train(cfg, data, ptr, num_classes, seed=0, gas=gas,
                             epochs=4, progress=False, record=record)
    assert sorted(record) == ['loss_curve', 'test_curve', 'val_curve']
    assert all(len(record[k]) == 4 for k in record)
    # The training loss starts near log(4 classes) and falls:
    assert record['loss_curve'][0] > record['loss_curve'][-1] > 0
    best = record['val_curve'].index(max(record['val_curve']))
    assert record['val_curve'][best] == pytest.approx(val, abs=1e-6)
    assert record['test_curve'][best] == pytest.approx(test, abs=1e-6)
    # The same seed without recording trains the same model.
    assert run.train(cfg, data, ptr, num_classes, seed=0, gas=gas, epochs=4,
                     progress=False)[:2] == (val, test)


def test_curves_option_end_to_end(stand_in_runner, tmp_path):
    run = stand_in_runner
    table, jsonl = tmp_path / 'curves.md', tmp_path / 'curves.jsonl'
    argv = ['--root', str(tmp_path), '--configs', 'gcn_cora', '--seeds',
            '2', '--epochs', '3', '--quiet', '--curves', '--out', str(table)]
    run.main(argv)
    records = read_jsonl(jsonl)
    assert sorted((r['mode'], r['seed']) for r in records) == [
        ('full', 0), ('full', 1), ('gas', 0), ('gas', 1)]
    for r in records:
        assert r['epochs'] == 3
        assert len(r['val_curve']) == len(r['test_curve']) == 3
        assert max(r['val_curve']) == pytest.approx(r['val'], abs=1e-6)
    text = table.read_text()
    assert '--curves' in text.split('```')[1]  # The command, on top.
    assert '| GCN | cora | GAS | 2 | 3 |' in text
    assert '| GCN | cora | full-batch | 2 | 3 |' in text

    # --skip-done keeps finished seeds with curves, but redoes seeds that
    # were recorded without them.
    for r in records:
        r['marker'] = True
    jsonl.write_text(''.join(json.dumps(r) + '\n' for r in records))
    run.main(argv + ['--skip-done'])
    assert all(r.get('marker') for r in read_jsonl(jsonl))
    for r in records:
        del r['val_curve']
    jsonl.write_text(''.join(json.dumps(r) + '\n' for r in records))
    run.main(argv + ['--skip-done'])
    redone = read_jsonl(jsonl)
    assert len(redone) == 4
    assert all('val_curve' in r and 'marker' not in r for r in redone)

    # Runs without the history warm-up are a setting of their own, with a
    # row and a column of their own; they replace no other run.
    run.main(argv + ['--no-warm-up', '--modes', 'gas', '--seeds', '1'])
    records = read_jsonl(jsonl)
    assert [r['warm_up'] for r in records] == [True] * 4 + [False]
    assert all(len(r['loss_curve']) == 3 for r in records)
    text = table.read_text()
    assert '| model | dataset | warm up | mode |' in text
    assert '| GCN | cora | False | GAS | 1 | 3 |' in text
    assert '| GCN | cora | True | GAS | 2 | 3 |' in text


def test_first_seed_shares_seeds_among_processes(stand_in_runner, tmp_path,
                                                 capsys):
    run = stand_in_runner
    table, jsonl = tmp_path / 'small.md', tmp_path / 'small.jsonl'
    argv = ['--root', str(tmp_path), '--configs', 'gcn_cora', '--epochs',
            '2', '--quiet', '--skip-done', '--out', str(table)]
    run.main(argv + ['--seeds', '1'])
    run.main(argv + ['--seeds', '3', '--first-seed', '2'])
    # Seed 1 was in neither command; the table pairs seeds 0 and 2.
    assert sorted((r['mode'], r['seed']) for r in read_jsonl(jsonl)) == [
        ('full', 0), ('full', 2), ('gas', 0), ('gas', 2)]
    assert '| GCN | cora | 2 | 2 |' in table.read_text()
    for bad in (['--seeds', '3', '--first-seed', '3'],
                ['--first-seed', '-1']):
        with pytest.raises(SystemExit):
            run.main(argv + bad)
        assert "'--first-seed' must be" in capsys.readouterr().err


def test_curves_default_to_their_own_results(monkeypatch):
    # --curves never writes over the results of results/small.md.
    run = load_runner()
    written = {}
    monkeypatch.setattr(run, 'write_curves_table', lambda jsonl, table:
                        written.update(jsonl=jsonl, table=table) or '')
    run.main(['--curves', '--table-only'])
    results = osp.join(ROOT, 'benchmark', 'results')
    assert written == dict(jsonl=osp.join(results, 'small_curves.jsonl'),
                           table=osp.join(results, 'small_curves.md'))


def test_committed_curves():
    records = read_jsonl(COMMITTED)
    assert all('--curves' in r['command'] for r in records)
    run = load_runner()
    groups = {}
    for r in records:  # Every config and setting: a table row pair.
        groups.setdefault(run.setting(r), []).append(r)
    for group in groups.values():
        seeds = {r['seed'] for r in group}
        assert len(seeds) >= 3
        for mode in ('gas', 'full'):
            runs = [r for r in group if r['mode'] == mode]
            assert sorted(r['seed'] for r in runs) == sorted(seeds)
            for r in runs:
                assert len(r['val_curve']) == r['epochs']
                assert len(r['loss_curve']) == r['epochs']
                assert max(r['val_curve']) == pytest.approx(r['val'],
                                                            abs=1e-6)
    with open(osp.join(ROOT, 'benchmark', 'results', 'small_curves.md')) as f:
        text = f.read()
    assert all(r['command'] in text for r in records)


class WrittenRows:
    r"""Spies on every :class:`History`: which rows were ever pushed, and
    how many rows pulls read that were never pushed."""
    def __init__(self, monkeypatch):
        self.written = {}
        self.pulled = self.unwritten = 0
        push, pull = History.push, History.pull

        def mask(history):
            return self.written.setdefault(
                history, torch.zeros(history.num_nodes, dtype=torch.bool))

        def spy_push(history, x, n_id=None, offset=None, count=None):
            rows = mask(history)
            if n_id is not None:
                rows[n_id] = True
            elif offset is not None:
                for o, c in zip(offset.tolist(), count.tolist()):
                    rows[o:o + c] = True
            else:
                rows[:] = True
            return push(history, x, n_id, offset, count)

        def spy_pull(history, n_id=None):
            rows = mask(history) if n_id is None else mask(history)[n_id]
            self.pulled += rows.numel()
            self.unwritten += int((~rows).sum())
            return pull(history, n_id)

        monkeypatch.setattr(History, 'push', spy_push)
        monkeypatch.setattr(History, 'pull', spy_pull)


@pytest.mark.parametrize('warm_up', [True, False])
def test_gas_reads_no_history_row_before_writing_it(monkeypatch, warm_up):
    # The GAS reference fills every history by layer-wise inference before
    # the first epoch; without that, the first epoch reads zeros.
    run = load_runner().training
    cfg = run.load_config('gcn_cora')
    data, ptr, num_classes = stand_in(run, cfg)
    spy = WrittenRows(monkeypatch)
    run.train(cfg, data, ptr, num_classes, seed=0, gas=True, epochs=2,
              progress=False, warm_up=warm_up)
    assert spy.pulled > 0
    if warm_up:
        assert spy.unwritten == 0
    else:
        assert spy.unwritten > 0


def test_partition_seed_varies_metis_clusters(monkeypatch):
    run = load_runner().training
    cfg = dict(run.load_config('gcn_cora'), num_parts=6)
    data = homophilous_sbm(300, num_classes=3, num_features=8, seed=0)
    monkeypatch.setattr(run, 'load_dataset',
                        lambda root, name, seed: data.clone())

    # METIS' fixed seed: the same clusters for every seed, as the
    # reference code; with --partition-seed, they vary with it.
    same = [run.prepare(cfg, 'unused', s)[0].x for s in range(3)]
    assert all(torch.equal(same[0], x) for x in same[1:])
    seeded = [run.prepare(cfg, 'unused', s, partition_seed=True)[0].x
              for s in range(3)]
    assert not all(torch.equal(seeded[0], x) for x in seeded[1:])


def test_config_overrides_are_a_setting_of_their_own(tmp_path):
    run = load_runner()
    parser = argparse.ArgumentParser()
    changes = run.parse_overrides(
        parser, ['num_parts=24', 'batch_size=8', 'grad_clip=null'])
    assert changes == dict(num_parts=24, batch_size=8, grad_clip=None)
    cfg = run.apply_overrides(dict(num_parts=40, batch_size=10,
                                   grad_clip=1.0, lr=0.01), changes)
    assert cfg == dict(num_parts=24, batch_size=8, lr=0.01)
    for bad in ('num_parts', '=3', 'lr=fast'):
        with pytest.raises(SystemExit):
            run.parse_overrides(parser, [bad])
    # Runs with overrides are rows of their own, with a column naming them:
    base = dict(config='gcn_cora', epochs=200)
    assert run.setting(dict(base, overrides='num_parts=24')) != \
        run.setting(base)
    assert run.extra_columns([base, dict(base, overrides='x=1')]) == [
        'overrides']
