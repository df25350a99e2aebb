import json
import logging
import os.path as osp

import pytest
import torch

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_example():
    return load_script(osp.join(ROOT, 'examples', 'train_gst.py'), 'train_gst')


def small(tu_root, *extra):
    return ['--dataset', 'PROTEINS', '--root', tu_root, '--epochs', '2',
            '--finetune-epochs', '2', '--max-graphs', '60', '--hidden', '16',
            '--device', 'cpu', *extra]


@pytest.mark.parametrize('variant', ['full', 'gst', 'gst-one', 'gst-efd'])
def test_train_gst_on_proteins(tu_root, variant):
    module = load_example()
    args = module.parser().parse_args(
        small(tu_root, '--variant', variant, '--max-segment-size', '8',
              '--quiet'))
    result = module.run(args)
    assert result['variant'] == variant
    assert 0.0 <= result['val'] <= 1.0 and 0.0 <= result['test'] <= 1.0
    assert result['ms_per_iter'] > 0 and result['step_memory_bytes'] > 0
    assert ('val_before_finetune' in result) == (variant == 'gst-efd')
    # The paper's sum pooling for segments; mean pooling for whole graphs.
    pool = 'mean' if variant == 'full' else 'sum'
    assert f"pool={pool!r}" in result['encoder']
    segments = result['segments_per_graph']
    assert 1 == segments['min'] < segments['mean'] < segments['max']


def test_warns_when_every_graph_stays_whole(tu_root, caplog):
    module = load_example()
    args = module.parser().parse_args(
        small(tu_root, '--variant', 'gst', '--max-segment-size', '100000',
              '--quiet'))
    with caplog.at_level(logging.INFO, logger='train_gst'):
        result = module.run(args)
    assert result['segments_per_graph']['max'] == 1
    assert 'segments per graph' in caplog.text
    assert '--max-segment-size 100000 leaves every graph whole' in caplog.text


def test_json_save_and_quiet(tu_root, tmp_path, capsys):
    module = load_example()
    json_path, model_path = tmp_path / 'out.json', tmp_path / 'best.pt'
    results = module.main(small(
        tu_root, '--variant', 'gst-efd', '--max-segment-size', '8',
        '--runs', '2', '--json', str(json_path), '--save', str(model_path),
        '--quiet'))
    err = capsys.readouterr().err
    assert '%|' not in err and 'it/s' not in err  # No progress bar.
    with open(json_path) as f:
        out = json.load(f)
    assert out['example'] == 'train_gst' and out['seeds'] == [0, 1]
    assert all('segments_per_graph' in r for r in out['runs'])

    saved = torch.load(model_path, weights_only=True)
    assert saved['val'] == max(r['val'] for r in results)
    model = module.load_model(str(model_path))
    state = model.state_dict()
    assert state.keys() == saved['state_dict'].keys()
    assert all(torch.equal(state[k], v)
               for k, v in saved['state_dict'].items())


def test_unknown_dataset_lists_what_is_there(tmp_path):
    module = load_example()
    with pytest.raises(module.common.DatasetNotFoundError,
                       match=r"TUDataset/NOPE/raw.*'malnet-tiny'.*none"):
        module.load('NOPE', str(tmp_path), 0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit, match='NOPE_A.txt'):
        module.main(['--dataset', 'NOPE', '--root', str(tmp_path)])


def test_train_gst_cli_rejects_unknown_variant():
    module = load_example()
    with pytest.raises(SystemExit):
        module.parser().parse_args(['--variant', 'gst-z'])


def test_parser_takes_a_redefined_flag():
    # benchmark/gst.py extends this parser and defines --threads again.
    parser = load_example().parser()
    parser.add_argument('--threads', type=int, default=None)
    assert parser.parse_args(['--threads', '2']).threads == 2
