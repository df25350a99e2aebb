r"""``benchmark/small/transpose.py``: its "PyTorch" way takes PyTorch's
transposes, and both ways compute the same gradients."""
import os.path as osp

import torch

from torch_autoscale.testing import load_script

HERE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'small')


def test_pytorch_transposes_change_the_path_not_the_gradients():
    bench = load_script(osp.join(HERE, 'transpose.py'), 'small_transpose')
    from torch_autoscale.nn.functional import dropout
    from torch_autoscale.nn.linear import Linear
    from torch_autoscale.utils.sparse import csr_cache
    torch.manual_seed(0)
    x = torch.rand(20, 30)
    x[x < 0.8] = 0
    lin = Linear(30, 4)
    grads = []
    for way in bench.WAYS:
        sparse = x.to_sparse_csr()
        ctx = bench.pytorch_transposes() if way == 'pytorch' else \
            bench.contextlib.nullcontext()
        with ctx:
            lin.zero_grad()
            lin(dropout(sparse, p=0.0)).sum().backward()
            out = dropout(sparse, p=0.5)
        grads.append(lin.weight.grad.clone())
        # The library's dropout output shares its input's transpose.
        shared = csr_cache(out).source is not None
        assert shared == (way == 'library')
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_table_takes_medians_and_speed_ups():
    bench = load_script(osp.join(HERE, 'transpose.py'), 'small_transpose')
    result = dict(model='GCN', dataset='coauthor-cs', epochs=3, sparse=True,
                  seconds=dict(full_pytorch=[0.2, 0.3, 0.1],
                               full_library=[0.1, 0.1, 0.5],
                               gas_pytorch=[0.4, 0.4, 0.4],
                               gas_library=[0.2, 0.3, 0.1]))
    _, body = bench.table([result])
    text = '\n'.join(body)
    assert ('| GCN | coauthor-cs | sparse | 0.2000 | 0.1000 | 2.00x | '
            '0.4000 | 0.2000 | 2.00x |') in text
