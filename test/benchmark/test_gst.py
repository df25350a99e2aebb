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
        '--hidden', '8', '--quiet', '--out-dir', str(tmp_path / 'gst'),
        '--table', str(tmp_path / 'gst.md'), *args
    ])
    load_benchmark().main()


def test_gst_benchmark_writes_its_table(tu_root, tmp_path, monkeypatch):
    run_benchmark(monkeypatch, tu_root, tmp_path, '--max-graphs', '45',
                  '--seeds', '1', '--variants', 'full', 'gst-one', 'gst-efd',
                  '--full-pool', 'mean')
    text = (tmp_path / 'gst.md').read_text()
    assert 'python benchmark/gst.py --dataset PROTEINS' in text
    for variant in ('full', 'gst-one', 'gst-efd'):
        assert f'| {variant} | 1 |' in text
    # Memory by graph size and side-by-side step times, for every variant:
    assert text.count('| gst-e |') == 2 and '| ms / step |' in text
    assert (tmp_path / 'gst' / 'memory_by_size.json').exists()
    assert (tmp_path / 'gst' / 'timing.json').exists()
    # --full-pool replaces the pooling of full-graph training only.
    runs = {v: json.loads((tmp_path / 'gst' / f'{v}_seed0.json').read_text())
            for v in ('full', 'gst-efd')}
    assert "pool='mean'" in runs['full']['encoder']
    assert "pool='sum'" in runs['gst-efd']['encoder']


def test_gst_benchmark_runs_a_range_of_seeds(tu_root, tmp_path, monkeypatch):
    run_benchmark(monkeypatch, tu_root, tmp_path, '--max-graphs', '30',
                  '--seeds', '3', '--first-seed', '2', '--variants',
                  'gst-one')
    assert sorted(p.name for p in (tmp_path / 'gst').glob('*_seed*.json')) \
        == ['gst-one_seed2.json']
