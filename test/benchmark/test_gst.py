import json
import os.path as osp
import sys

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_benchmark():
    return load_script(osp.join(ROOT, 'benchmark', 'gst.py'), 'bench_gst')


def run_benchmark(monkeypatch, tu_root, tmp_path, *args):
    # A tiny PROTEINS run of the benchmark's command line.
    monkeypatch.setattr(sys, 'argv', [
        'gst.py', '--dataset', 'PROTEINS', '--root', tu_root,
        '--max-segment-size', '8', '--epochs', '1', '--finetune-epochs', '1',
        '--hidden', '8', '--quiet', '--out', str(tmp_path / 'gst.md'), *args
    ])
    load_benchmark().main()
    with open(tmp_path / 'gst.jsonl') as f:
        return [json.loads(line) for line in f]


def test_gst_benchmark_writes_its_table(tu_root, tmp_path, monkeypatch):
    records = run_benchmark(monkeypatch, tu_root, tmp_path, '--max-graphs',
                            '45', '--seeds', '1', '--variants', 'full',
                            'gst-one', 'gst-efd', '--full-pool', 'mean')
    text = (tmp_path / 'gst.md').read_text()
    assert 'python benchmark/gst.py --dataset PROTEINS' in text
    for variant in ('full', 'gst-one', 'gst-efd'):
        assert f'| {variant} | 1 | 1 |' in text
    # Memory by graph size and side-by-side step times, for every variant:
    assert text.count('| gst-e |') == 2 and '| ms / step |' in text
    kinds = [r['kind'] for r in records]
    assert kinds.count('memory_by_size') == kinds.count('timing') == 5
    # --full-pool replaces the pooling of full-graph training only.
    runs = {r['variant']: r for r in records if r['kind'] == 'run'}
    assert "pool='mean'" in runs['full']['encoder']
    assert "pool='sum'" in runs['gst-efd']['encoder']
    assert all(r['command'] == records[0]['command'] for r in records)


def test_gst_benchmark_runs_a_range_of_seeds(tu_root, tmp_path, monkeypatch):
    records = run_benchmark(monkeypatch, tu_root, tmp_path, '--max-graphs',
                            '30', '--seeds', '3', '--first-seed', '2',
                            '--variants', 'gst-one')
    assert [(r['variant'], r['seed']) for r in records
            if r['kind'] == 'run'] == [('gst-one', 2)]
    # --skip-done measures nothing more.
    again = run_benchmark(monkeypatch, tu_root, tmp_path, '--max-graphs',
                          '30', '--seeds', '3', '--first-seed', '2',
                          '--variants', 'gst-one', '--skip-done')
    assert again == records
