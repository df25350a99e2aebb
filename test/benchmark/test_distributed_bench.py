import json
import os.path as osp
import sys

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_distributed_benchmark_runs_torchrun_and_writes_its_table(
        tmp_path, monkeypatch):
    bench = load_script(osp.join(ROOT, 'benchmark', 'distributed.py'),
                        'bench_distributed')
    monkeypatch.setattr(bench, 'CONFIGS', [(1, 1, 'sharded'),
                                           (2, 1, 'shared')])
    table = tmp_path / 'distributed.md'
    monkeypatch.setattr(sys, 'argv', [
        'distributed.py', '--datasets', 'synthetic', '--num-nodes', '2000',
        '--seeds', '1', '--epochs', '3', '--out', str(table)
    ])
    bench.main()
    text = table.read_text()
    assert 'python benchmark/distributed.py --datasets synthetic' in text
    assert '| synthetic | 2000 | 1 | 1 | sharded | 1 |' in text
    assert '| synthetic | 2000 | 2 | 1 | shared | 1 |' in text
    runs = [json.loads(line) for line in
            (tmp_path / 'distributed.jsonl').read_text().splitlines()]
    assert sorted(r['world_size'] for r in runs) == [1, 2]
    # One process takes every step alone; two split each step's clusters.
    assert len({r['clusters_per_step'] for r in runs}) == 1
    for r in runs:
        assert r['num_nodes'] == 2000 and len(r['val_curve']) == 3
        assert r['test'] > 0.3  # Eight classes: chance is 0.125.
        assert r['command'].startswith('python benchmark/distributed.py')
    # --skip-done runs nothing more; --table-only rebuilds the same table.
    bench.main(sys.argv[1:] + ['--skip-done'])
    assert len((tmp_path / 'distributed.jsonl').read_text().splitlines()) \
        == 2
    assert bench.main(['--table-only', '--out', str(table)]) == text
