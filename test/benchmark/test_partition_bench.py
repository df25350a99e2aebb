import json
import os.path as osp

import torch

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_benchmark():
    return load_script(osp.join(ROOT, 'benchmark', 'partition.py'),
                       'bench_partition')


def test_rmat_is_a_simple_undirected_graph_of_the_requested_size():
    bench = load_benchmark()
    edge_index, num_nodes = bench.rmat(20_000, seed=0)
    assert edge_index.dtype == torch.long and edge_index.size(0) == 2
    assert num_nodes == 2048  # The power of two at or above 20000 / 16.
    num_edges = edge_index.size(1) // 2
    assert abs(num_edges - 20_000) <= 2_000
    row, col = edge_index
    assert int(edge_index.min()) >= 0 and int(edge_index.max()) < num_nodes
    assert not bool((row == col).any())  # No self-loops.
    key = row * num_nodes + col
    assert key.unique().numel() == key.numel()  # No duplicates.
    # Symmetric: the reversed edges are the same set.
    assert torch.equal(key.sort().values,
                       (col * num_nodes + row).sort().values)
    # Skewed degrees, as R-MAT graphs are:
    deg = torch.bincount(row, minlength=num_nodes)
    assert int(deg.max()) > 10 * deg.float().mean()
    # Repeats for a seed, differs for another:
    again, _ = bench.rmat(20_000, seed=0)
    assert torch.equal(edge_index, again)
    other, _ = bench.rmat(20_000, seed=1)
    assert not torch.equal(edge_index, other)


def test_worker_run_records_a_measurement(tmp_path):
    bench = load_benchmark()
    table, jsonl = tmp_path / 'partition.md', tmp_path / 'partition.jsonl'
    argv = ['--graphs', 'rmat0.02', '--methods', 'random', '--cache-dir',
            str(tmp_path / 'cache'), '--out', str(table)]
    bench.main(argv)

    lines = jsonl.read_text().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    for field in ('graph', 'num_nodes', 'num_edges', 'method', 'num_parts',
                  'seconds', 'peak_rss_bytes', 'baseline_rss_bytes',
                  'status', 'edge_cut', 'balance', 'size_std', 'threads',
                  'commit', 'command'):
        assert field in r, field
    assert r['status'] == 'ok', r.get('log_tail')
    assert r['graph'] == 'rmat0.02' and r['method'] == 'random'
    assert r['num_parts'] == 64 and r['threads'] == 1
    assert abs(r['num_edges'] - 20_000) <= 2_000
    assert r['num_nodes'] == 2048
    assert r['peak_rss_bytes'] >= r['baseline_rss_bytes'] > 0
    assert 0.9 < r['edge_cut'] < 1.0  # Random parts cut about 1 - 1/K.
    assert r['balance'] >= 1.0 and r['size_std'] < 1.0
    assert r['command'].startswith('python benchmark/partition.py --graphs')

    text = table.read_text()
    assert 'python benchmark/partition.py --graphs rmat0.02' in text
    assert '## rmat0.02: 2,048 nodes' in text
    assert '| random | 64 | 1 |' in text

    # `--skip-done` runs nothing more, `--table-only` only rebuilds:
    bench.main(argv + ['--skip-done'])
    bench.main(['--table-only', '--out', str(table)])
    assert jsonl.read_text().splitlines() == lines
    assert table.read_text() == text
    # Without it, the run is measured again and replaces its record.
    bench.main(argv)
    again = jsonl.read_text().splitlines()
    assert len(again) == 1 and again != lines


def test_time_out_records_the_peak_reached(tmp_path):
    bench = load_benchmark()
    edge_index, num_nodes = bench.rmat(1_000, seed=0)
    path = str(tmp_path / 'graph.pt')
    torch.save(dict(edge_index=edge_index, num_nodes=num_nodes,
                    num_edges=edge_index.size(1) // 2), path)
    r = bench.measure(path, 'random', 4, timeout=0.3)
    assert r['status'] == 'timeout'
    assert r['peak_is_lower_bound'] and r['peak_rss_bytes'] > 0
    assert r['reason'].startswith('timeout after 0.3 s, peak >= ')


def _result(graph, method, num_edges, seconds, peak, edge_cut=0.5,
            status='ok'):
    return dict(graph=graph, method=method, num_parts=4, threads=1, seed=0,
                num_nodes=100, num_edges=num_edges, seconds=seconds,
                peak_rss_bytes=peak, baseline_rss_bytes=peak // 2,
                peak_over_baseline_bytes=peak - peak // 2, status=status,
                edge_cut=edge_cut, balance=1.0, size_std=0.0,
                method_kwargs={}, wall_seconds=seconds, command='python x')


def test_tables_scaling_and_edge_cut_ratios(tmp_path):
    bench = load_benchmark()
    runs = [
        _result('rmat1', 'lpmetis', 1_000_000, 1.0, 2 * 2**30),
        _result('rmat4', 'lpmetis', 4_000_000, 5.0, 4 * 2**30),
        _result('rmat1', 'metis', 1_000_000, 2.0, 4 * 2**30),
        _result('rmat4', 'metis', 4_000_000, 16.0, 16 * 2**30),
        _result('cs', 'metis', 80_000, 0.1, 2**30, edge_cut=0.25),
        _result('cs', 'lpmetis', 80_000, 0.1, 2**30, edge_cut=0.45),
    ]
    (tmp_path / 't.jsonl').write_text(
        ''.join(json.dumps(r) + '\n' for r in runs))
    text = bench.write_table(str(tmp_path / 't.jsonl'),
                             str(tmp_path / 't.md'))
    # (5 / 1) ^ (1 / 2) = 2.24 per doubling; METIS (16 / 2) ^ (1 / 2):
    assert '| rmat1 | rmat4 | 4.00 | 1.00 → 5.00 | 2.24 | 2.83 | pass |' \
        in text
    assert '| rmat4 | 4 | 4.000 | 16.000 | 0.25 |' in text
    assert '| cs | 4 | 0.2500 | 0.4500 | 1.80 | FAIL |' in text
