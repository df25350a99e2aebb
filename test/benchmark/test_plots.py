import os.path as osp
import shutil

import pytest

from torch_autoscale.testing import load_script

pytest.importorskip('matplotlib')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESULTS = osp.join(ROOT, 'benchmark', 'results')


def load_plots():
    return load_script(osp.join(ROOT, 'benchmark', 'plots.py'),
                       'bench_plots')


def is_png(path) -> bool:
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_every_figure_from_the_committed_results(tmp_path):
    plots = load_plots()
    written = plots.main(['--out', str(tmp_path)])
    names = sorted(osp.basename(p) for p in written)
    assert names == sorted(f'{n}.png' for n in plots.FIGURES)
    for path in written:
        assert is_png(path)
        assert 5_000 < osp.getsize(path) < 200_000  # Small, not empty.


def png_size(path):
    with open(path, 'rb') as f:
        header = f.read(24)
    return int.from_bytes(header[16:20], 'big'), int.from_bytes(
        header[20:24], 'big')


def test_committed_pngs_are_what_the_command_draws(tmp_path):
    # Byte for byte only with the same matplotlib and fonts: compare sizes.
    plots = load_plots()
    for path in plots.main(['--out', str(tmp_path), '--only', 'gst',
                            'memory']):
        committed = osp.join(plots.OUT, osp.basename(path))
        assert is_png(committed)
        assert png_size(committed) == png_size(path) == (900, 300)
    for path in plots.main(['--out', str(tmp_path), '--only',
                            'gas_vs_full_curve']):
        committed = osp.join(plots.OUT, osp.basename(path))
        assert is_png(committed)
        # One row (loss, validation accuracy) per config recorded:
        assert png_size(committed) == png_size(path)
        assert png_size(path)[0] == 800


def test_missing_results_skip_their_figure(tmp_path, capsys):
    results = tmp_path / 'results'
    results.mkdir()
    shutil.copy(osp.join(RESULTS, 'gst.jsonl'), results)
    plots = load_plots()
    written = plots.main(['--results', str(results), '--out',
                          str(tmp_path / 'out')])
    assert [osp.basename(p) for p in written] == ['gst.png']
    err = capsys.readouterr().err
    assert 'gas_vs_full: skipped, no small.jsonl under' in err


def test_documented():
    # Every figure is on a docs page and the command is in the README.
    with open(osp.join(ROOT, 'benchmark', 'README.md')) as f:
        assert 'python benchmark/plots.py' in f.read()
    plots = load_plots()
    pages = ''
    for name in ('concepts', 'partitioning', 'planning', 'segment_training',
                 'distributed', 'results'):
        with open(osp.join(ROOT, 'docs', 'source', f'{name}.rst')) as f:
            pages += f.read()
    for name in plots.FIGURES:
        assert f'_static/plots/{name}.png' in pages, name
