import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import torch

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLE = osp.join(ROOT, 'examples', 'train_gcn_distributed.py')
SMALL = ['--num-parts', '8', '--batch-size', '2', '--epochs', '2',
         '--threads', '1', '--device', 'cpu', '--timeout', '120']


def launch(args, nproc=None, timeout=300):
    cmd = [sys.executable, EXAMPLE]
    if nproc is not None:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc-per-node', str(nproc), EXAMPLE]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(cmd + SMALL + args, capture_output=True, text=True,
                          cwd='/', env=env, timeout=timeout)


def test_one_process_json_save_quiet(tmp_path):
    json_path, model_path = tmp_path / 'out.json', tmp_path / 'best.pt'
    proc = launch(['--num-nodes', '1000', '--json', str(json_path), '--save',
                   str(model_path), '--quiet'])
    assert proc.returncode == 0, proc.stderr
    assert '%|' not in proc.stderr and 'it/s' not in proc.stderr
    with open(json_path) as f:
        out = json.load(f)
    # The keys benchmark/distributed.py reads.
    for key in ('dataset', 'world_size', 'threads', 'history', 'test',
                'sec_per_epoch'):
        assert key in out, key
    assert out['example'] == 'train_gcn_distributed'
    assert out['world_size'] == 1 and len(out['runs']) == 1

    train_gcn = load_script(osp.join(ROOT, 'examples', 'train_gcn.py'),
                            'train_gcn')
    model = train_gcn.load_model(str(model_path))
    assert model.num_nodes == 1000
    assert torch.load(model_path, weights_only=True)['val'] == out['val']


def test_missing_dataset_is_a_clear_error(tmp_path):
    proc = launch(['--dataset', 'pubmed', '--root', str(tmp_path)])
    assert proc.returncode != 0
    assert f'{tmp_path}/Planetoid/PubMed/raw' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_two_processes_on_a_fresh_dataset_root(cora_root, tmp_path):
    # Only the raw files: PyG processes them on first use. Rank 0 does,
    # the other waits (two processes writing processed/ at once crashed).
    raw = osp.join(cora_root, 'Planetoid', 'Cora', 'raw')
    shutil.copytree(raw, tmp_path / 'Planetoid' / 'Cora' / 'raw')
    proc = launch(['--dataset', 'cora', '--root', str(tmp_path), '--epochs',
                   '1', '--quiet'], nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 process(es)' in proc.stdout
    assert (tmp_path / 'Planetoid' / 'Cora' / 'processed').is_dir()
