r"""The code shown to users in the README and the quickstart page runs."""
import os.path as osp
import re
import textwrap

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def readme_code() -> str:
    with open(osp.join(ROOT, 'README.md')) as f:
        return re.findall(r'```python\n(.*?)```', f.read(), re.S)[0]


def rst_code(*path: str) -> str:
    r"""The first ``.. code-block:: python`` of a docs page, dedented."""
    with open(osp.join(ROOT, 'docs', 'source', *path)) as f:
        text = f.read()
    block = text.split('.. code-block:: python\n', 1)[1]
    lines = []
    for line in block.split('\n')[1:]:
        if line and not line.startswith('   '):
            break
        lines.append(line)
    return textwrap.dedent('\n'.join(lines))


def quickstart_code() -> str:
    return rst_code('quickstart.rst')


@pytest.mark.parametrize('get_code', [readme_code, quickstart_code])
def test_quickstart_runs(get_code):
    code = get_code()
    assert 'ScalableGNN' in code and 'mini_inference' in code
    # Smaller graph and fewer epochs, same code path.
    code = code.replace('num_nodes=20_000', 'num_nodes=2_000')
    code = code.replace('range(20)', 'range(2)')
    scope = {}
    exec(compile(code, get_code.__name__, 'exec'), scope)
    out = scope['out']
    assert out.size() == (2_000, 8)
    assert torch.isfinite(out).all()


def test_planning_example_runs(tmp_path):
    # On this machine's device (a CPU here), with a graph of its own.
    from torch_autoscale.utils import homophilous_sbm
    code = rst_code('planning.rst').replace('/scratch/histories', str(tmp_path))
    assert 'gcn_norm' in code
    prelude = ('from torch_autoscale.loader import SubgraphLoader\n'
               'from torch_autoscale.nn.models import GCN\n')
    scope = dict(data=homophilous_sbm(num_nodes=3000), num_classes=8)
    exec(compile(prelude + code, 'planning.rst', 'exec'), scope)
    batch = next(iter(scope['loader']))
    out = scope['model'](batch.data.x, batch.data.adj_t, batch)
    assert out.size() == (batch.batch_size, 8)
    assert torch.isfinite(out).all()


def test_out_of_core_example_runs(tmp_path, monkeypatch):
    # The page's walk from an edge list to predictions, on a smaller graph.
    monkeypatch.chdir(tmp_path)
    code = rst_code('out_of_core.rst')
    assert 'ingest_edge_list' in code and 'out=pred' in code
    for big, small in (('200_000', '3_000'), ('num_parts=200', 'num_parts=30'),
                       (', 200,', ', 30,')):
        code = code.replace(big, small)
    scope = {}
    exec(compile(code, 'out_of_core.rst', 'exec'), scope)
    pred = scope['pred']
    assert pred.shape == (3_000, 10) and bool(torch.isfinite(pred).all())
    # The page's way back to the edge list's node order.
    assert torch.equal(scope['perm'][scope['inverse']], torch.arange(3_000))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'graph', 'graph_p', 'pred.npy', 'raw']
