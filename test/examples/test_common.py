import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLES = ['train_gcn', 'train_gst', 'train_gcn_distributed']
SHARED = ['--root', '--download', '--seed', '--runs', '--device',
          '--threads', '--json', '--save', '--quiet', '--plot']


def load(name: str):
    return load_script(osp.join(ROOT, 'examples', f'{name}.py'), name)


def common():
    return load_script(osp.join(ROOT, 'examples', 'common.py'), 'common')


@pytest.mark.parametrize('name', EXAMPLES)
def test_help_shows_every_default(name):
    parser = load(name).parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.option_strings and action.dest != 'help':
            text = formatter._format_action(action)
            assert '(default' in text, f'{name}: {action.option_strings}'


def test_shared_flags_have_the_same_defaults():
    defaults = []
    for name in EXAMPLES:
        parser = load(name).parser()
        flags = {opt: a for a in parser._actions for opt in a.option_strings}
        assert set(SHARED) <= set(flags), name
        defaults.append({f: flags[f].default for f in SHARED})
    assert defaults[0] == defaults[1] == defaults[2]
    assert defaults[0]['--device'] == ('cuda' if torch.cuda.is_available()
                                       else 'cpu')
    assert defaults[0]['--seed'] == 0 and defaults[0]['--runs'] == 1


@pytest.mark.parametrize('name', EXAMPLES)
def test_help_as_a_script(name):
    # The examples run as plain scripts (they import their sibling common).
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'examples', f'{name}.py'), '--help'],
        capture_output=True, text=True, cwd='/', timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in SHARED:
        assert flag in proc.stdout
    assert '(default: 0)' in proc.stdout  # --seed


def test_summarize_and_json(tmp_path):
    module = common()
    runs = [dict(dataset='d', seed=0, test=0.5, curve=[1]),
            dict(dataset='d', seed=1, test=0.7, curve=[2])]
    out = module.summarize(runs)
    assert out['dataset'] == 'd' and out['seeds'] == [0, 1]
    assert out['test'] == pytest.approx(0.6)
    assert out['test_std'] == pytest.approx(0.1414, abs=1e-3)
    assert 'curve' not in out and out['runs'] == runs
    one = module.summarize(runs[:1])  # One run: its own values on top.
    assert one['test'] == 0.5 and one['curve'] == [1]

    path = str(tmp_path / 'out.json')
    parser = module.make_parser('x')
    module.add_common_arguments(parser)
    args = parser.parse_args([])
    module.write_json(path, runs, args, 'example')
    with open(path) as f:
        written = json.load(f)
    assert written['example'] == 'example' and len(written['runs']) == 2
    assert written['args']['runs'] == 1


def test_unknown_node_dataset_lists_choices():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*cora.*"
                       "pubmed.*wikics"):
        common().load_node_dataset('nope', 'data')


@pytest.mark.parametrize('name,folder,file', [
    ('pubmed', 'Planetoid/PubMed/raw', 'ind.pubmed.x'),
    ('amazon-photo', 'Amazon/Photo/raw', 'amazon_electronics_photo.npz'),
    ('wikics', 'WikiCS/raw', 'data.json'),
])
def test_missing_dataset_names_the_folder(tmp_path, name, folder, file):
    module = common()
    with pytest.raises(module.DatasetNotFoundError) as info:
        module.load_node_dataset(name, str(tmp_path))
    assert str(tmp_path / folder) in str(info.value)
    assert file in str(info.value) and '--download' in str(info.value)
    assert list(tmp_path.iterdir()) == []  # Nothing created, no download.


def test_node_datasets_from_the_offline_archives(cora_root):
    module = common()
    data = module.load_node_dataset('Cora', cora_root)  # Case is ignored.
    assert data.num_nodes == 2708 and int(data.train_mask.sum()) == 140
    if osp.isdir(osp.join(cora_root, 'Tolokers', 'raw')):
        # Several splits: one per seed; the archive's folder name.
        data = module.load_node_dataset('tolokers', cora_root, seed=3)
        assert data.train_mask.dim() == 1 and data.num_nodes == 11758
