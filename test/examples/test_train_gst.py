import os.path as osp

import pytest

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_example():
    return load_script(osp.join(ROOT, 'examples', 'train_gst.py'), 'train_gst')


@pytest.mark.parametrize('variant', ['full', 'gst', 'gst-one', 'gst-efd'])
def test_train_gst_on_proteins(tu_root, variant):
    module = load_example()
    args = module.parser().parse_args([
        '--dataset', 'PROTEINS', '--root', tu_root, '--variant', variant,
        '--max-segment-size', '8', '--epochs', '2', '--finetune-epochs', '2',
        '--max-graphs', '60', '--hidden', '16', '--quiet'
    ])
    result = module.run(args)
    assert result['variant'] == variant
    assert 0.0 <= result['val'] <= 1.0 and 0.0 <= result['test'] <= 1.0
    assert result['ms_per_iter'] > 0 and result['step_memory_bytes'] > 0
    assert ('val_before_finetune' in result) == (variant == 'gst-efd')
    # The paper's sum pooling for segments; mean pooling for whole graphs.
    pool = 'mean' if variant == 'full' else 'sum'
    assert f"pool={pool!r}" in result['encoder']


def test_train_gst_cli_rejects_unknown_variant():
    module = load_example()
    with pytest.raises(SystemExit):
        module.parser().parse_args(['--variant', 'gst-z'])
