r"""``benchmark/bench_util.py``: results files are written atomically."""
import json
import os
import os.path as osp

import pytest

from torch_autoscale.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def bench_util():
    return load_script(osp.join(ROOT, 'benchmark', 'bench_util.py'),
                       'bench_util_under_test')


def test_write_text_replaces_at_once(bench_util, tmp_path):
    path = tmp_path / 'sub' / 'table.md'
    bench_util.write_text(str(path), 'old\n')
    bench_util.write_text(str(path), 'new\n')
    assert path.read_text() == 'new\n'
    assert os.listdir(path.parent) == ['table.md']  # No temporary left.
    assert path.stat().st_mode & 0o777 == 0o644

    records = [dict(a=1), dict(b=[2, 3])]
    bench_util.write_jsonl(str(path.with_suffix('.jsonl')), records)
    assert bench_util.read_jsonl(str(path.with_suffix('.jsonl'))) == records
    bench_util.write_json(str(path.with_suffix('.json')), records[1])
    assert json.loads(path.with_suffix('.json').read_text()) == records[1]


def test_failed_write_keeps_the_old_file(bench_util, tmp_path):
    path = tmp_path / 'results.jsonl'
    bench_util.write_jsonl(str(path), [dict(a=1)])
    with pytest.raises(TypeError):  # Not JSON: fails before writing.
        bench_util.write_jsonl(str(path), [dict(a=2), dict(b=object())])
    assert bench_util.read_jsonl(str(path)) == [dict(a=1)]
    assert os.listdir(tmp_path) == ['results.jsonl']
    with pytest.raises(TypeError):  # A write that fails mid-file.
        bench_util.write_text(str(path), None)
    assert os.listdir(tmp_path) == ['results.jsonl']
