r"""The examples' :obj:`--plot PATH`: the training curves of every run."""
import builtins
import json
import os.path as osp
import subprocess
import sys

import pytest

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = ['--num-nodes', '600', '--num-parts', '4', '--batch-size', '2',
         '--epochs', '3', '--device', 'cpu', '--quiet']


def load(name: str):
    return load_script(osp.join(ROOT, 'examples', f'{name}.py'), name)


def is_png(path) -> bool:
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_train_gcn_plot_and_json(tmp_path):
    pytest.importorskip('matplotlib')
    plot, out = tmp_path / 'curve.png', tmp_path / 'out.json'
    results = load('train_gcn').main(SMALL + ['--runs', '2', '--plot',
                                              str(plot), '--json', str(out)])
    assert is_png(plot)
    for result in results:  # What the picture shows.
        assert len(result['loss_curve']) == len(result['val_curve']) == 3
        assert all(loss > 0 for loss in result['loss_curve'])
    with open(out) as f:
        assert len(json.load(f)['runs'][1]['loss_curve']) == 3


def test_train_gcn_distributed_plot(tmp_path):
    pytest.importorskip('matplotlib')
    plot = tmp_path / 'curve.svg'  # Any format matplotlib writes.
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'examples',
                                  'train_gcn_distributed.py'), *SMALL,
         '--threads', '1', '--timeout', '120', '--plot', str(plot)],
        capture_output=True, text=True, cwd='/', timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert plot.read_text().lstrip().startswith('<?xml')


def test_train_gst_plot(tu_root, tmp_path):
    pytest.importorskip('matplotlib')
    plot = tmp_path / 'curve.png'
    load('train_gst').main([
        '--dataset', 'PROTEINS', '--root', tu_root, '--epochs', '2',
        '--max-graphs', '40', '--hidden', '8', '--max-segment-size', '8',
        '--variant', 'gst', '--device', 'cpu', '--quiet', '--plot',
        str(plot)])
    assert is_png(plot)


def test_curves_of_both_shapes(tmp_path):
    pytest.importorskip('matplotlib')
    common = load_script(osp.join(ROOT, 'examples', 'common.py'), 'common')
    path = str(tmp_path / 'c.png')
    common.write_plot(path, [  # Every epoch, and every few epochs (GST).
        dict(seed=0, loss_curve=[1.0, 0.5], val_curve=[0.3, 0.6]),
        dict(seed=1, loss_curve=[1.0, 0.4], val_curve=[[2, 0.5]]),
    ], 'title')
    assert is_png(path)
    assert not [p for p in tmp_path.iterdir() if 'tmp' in p.name]


@pytest.mark.parametrize('path, match', [
    ('curve.txt', "unknown image format 'txt': end the name with one of "
     ".*\\.png.*\\.svg"),
    ('nowhere/curve.png', 'folder .*nowhere does not exist'),
])
def test_bad_plot_path_fails_before_training(tmp_path, path, match):
    pytest.importorskip('matplotlib')
    module = load('train_gcn')
    with pytest.raises(SystemExit, match=match):
        module.main(SMALL + ['--plot', str(tmp_path / path)])


def test_without_matplotlib(monkeypatch, tmp_path):
    module = load('train_gcn')
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == 'matplotlib' or name.startswith('matplotlib.'):
            raise ImportError(f'No module named {name!r}')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_matplotlib)
    with pytest.raises(SystemExit, match="--plot needs matplotlib, which is "
                       "not installed: pip install matplotlib"):
        module.main(SMALL + ['--plot', str(tmp_path / 'c.png')])
    # Without --plot nothing imports it.
    module.main(SMALL + ['--epochs', '1'])
