r"""The committed benchmark results: every table is what its script builds
from the JSONL file beside it, and ``benchmark/README.md`` lists every
result file there is, and none that is not."""
import os
import os.path as osp
import re
import shutil

import pytest

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCHMARK = osp.join(ROOT, 'benchmark')
RESULTS = osp.join(BENCHMARK, 'results')

#: Table -> the script that builds it, and the options it needs for that.
TABLES = {
    'small': ('small/run.py', []),
    'small_curves': ('small/run.py', ['--curves']),
    'history_dtype': ('small/run.py', []),
    'partition_gas': ('small/run.py', []),
    'small_overhead': ('small/overhead.py', []),
    'small_overhead_malloc': ('small/overhead.py', []),
    'small_transpose': ('small/transpose.py', []),
    'partition': ('partition.py', []),
    'partition_spark': ('partition_spark.py', []),
    'memory': ('memory.py', []),
    'gst': ('gst.py', []),
    'gst_e120': ('gst.py', []),
    'distributed': ('distributed.py', []),
    'distributed_large': ('distributed.py', []),
    'reliability': ('reliability.py', []),
    'out_of_core': ('out_of_core.py', []),
    'augmentation': ('augmentation.py', []),
}
#: Tables without raw results (measured before the scripts kept them), or
#: written by hand from them.
OTHER_TABLES = {'cpu_malloc', 'ops', 'gst_pilot'}


def committed(ext: str):
    return sorted(name[:-len(ext)] for name in os.listdir(RESULTS)
                  if name.endswith(ext))


def test_every_table_is_known_and_has_its_results():
    assert set(committed('.md')) == set(TABLES) | OTHER_TABLES
    assert set(committed('.jsonl')) == set(TABLES) | {'gst_pilot'}
    assert not [name for name in os.listdir(RESULTS)
                if not name.endswith(('.md', '.jsonl'))]


@pytest.mark.parametrize('name', sorted(TABLES))
def test_table_is_built_from_its_jsonl(name, tmp_path):
    script, options = TABLES[name]
    for other in {name, 'partition_gas'}:  # partition.md reads both.
        shutil.copy(osp.join(RESULTS, f'{other}.jsonl'), tmp_path)
    bench = load_script(osp.join(BENCHMARK, script), f'table_{name}')
    out = str(tmp_path / f'{name}.md')
    bench.main(['--table-only', '--out', out, *options])
    with open(out) as f, open(osp.join(RESULTS, f'{name}.md')) as g:
        assert f.read() == g.read()


def test_readme_lists_every_result():
    with open(osp.join(BENCHMARK, 'README.md')) as f:
        # The history section names removed results on purpose.
        readme = f.read().split('\n## History\n')[0]
    linked = set(re.findall(r'\]\(results/([^)]+)\.md\)', readme))
    assert linked == set(committed('.md'))
    for path in re.findall(r'`((?:benchmark/)?results/[\w./]+)`', readme):
        path = path[len('benchmark/'):] if path.startswith('bench') else path
        assert osp.exists(osp.join(BENCHMARK, path)), path
