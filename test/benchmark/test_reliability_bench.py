r"""``benchmark/reliability.py``: its quick run passes every fault case it
tries and measures both check settings; a case that crashes or hangs its
child interpreter is recorded as such, and the cases after it still run."""
import json
import os.path as osp

from torch_autoscale.testing import load_script

PATH = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'reliability.py')


def load():
    return load_script(PATH, 'reliability')


def test_quick_run_every_case_ok(tmp_path):
    bench = load()
    out = tmp_path / 'reliability.md'
    result = bench.main(['--quick', '--out', str(out)])
    cases = result['cases']
    assert len(cases) >= 5
    assert {r['cls'] for r in cases} >= {1, 3, 4, 5, 8}
    bad = [r for r in cases if not r['ok']]
    assert not bad, bad
    assert all(r['observed'] in (bench.CORRECT, r['expected'])
               for r in cases)

    modes = {s['mode']: s for s in result['summary']}
    for mode in ('GAS float32', 'GAS float16'):
        assert modes[mode]['on'] > 0 and modes[mode]['off'] > 0
        assert modes[mode]['ratio'] > 0 and modes[mode]['epochs'] == 3
    assert modes['full-batch']['on'] > 0

    text = out.read_text()
    assert f'python benchmark/reliability.py --quick --out {out}' in text
    assert f'**{len(cases)} cases, {len(cases)} ok.**' in text
    lines = [json.loads(line) for line in
             (tmp_path / 'reliability.jsonl').read_text().splitlines()]
    assert lines[0]['kind'] == 'run'
    assert sum(line['kind'] == 'case' for line in lines) == len(cases)
    assert sum(line['kind'] == 'epoch' for line in lines) == 4 * 5
    # The table is rebuilt from the JSONL file alone.
    assert bench.main(['--table-only', '--out', str(out)])['text'] == text


def test_signal_and_hang_are_charged_to_their_case(tmp_path):
    bench = load()
    cases = [
        bench.Case(1, 'fine before', 'ValueError', 'int("x")', 'invalid'),
        bench.Case(1, 'segfault', 'ValueError',
                   'import ctypes\nctypes.string_at(0)'),
        bench.Case(1, 'hang', 'ValueError', 'time.sleep(60)', timeout=2),
        bench.Case(1, 'wrong message', 'ValueError', 'int("x")', 'nope'),
        bench.Case(1, 'correct', bench.CORRECT, 'assert TMP'),
        bench.Case(1, 'wrong result', bench.CORRECT, 'assert 1 == 2'),
    ]
    group = bench.Group('demo', 'import time', cases)
    records = {r['case']: r for r in bench.run_group(group, str(tmp_path))}
    assert [records[c.name]['observed'] for c in cases] == [
        'ValueError', 'signal SIGSEGV', 'hang',
        'ValueError (message does not match)', bench.CORRECT,
        'AssertionError'
    ]
    assert [records[c.name]['ok'] for c in cases] == [
        True, False, False, False, True, False
    ]
