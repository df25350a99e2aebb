r"""Fixtures of the fault suite: risky calls run in a child process, so a
crash (a signal) fails the test instead of taking the test run down."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any, Dict, Optional

import pytest

_PRELUDE = r'''
import json, sys, traceback
def _report(result):
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result) + "\n")
    sys.stdout.flush()
try:
    exec(compile(_CODE, "<isolated>", "exec"), {"__name__": "__isolated__"})
except BaseException as e:
    _report({"error": type(e).__name__,
             "mro": [c.__name__ for c in type(e).__mro__],
             "message": str(e)})
else:
    _report({"error": None})
'''


class Isolated:
    r"""Runs Python code in a fresh interpreter and reports how it ended.

    :meth:`__call__` returns a dict with :obj:`error` (the exception's class
    name, or :obj:`None`), :obj:`mro` (its class hierarchy's names) and
    :obj:`message`, and fails the test if the child died by a signal, hung
    past :obj:`timeout` or left no report.
    """
    def __call__(self, code: str, timeout: float = 120,
                 env: Optional[Dict[str, str]] = None,
                 preexec_fn: Any = None) -> Dict[str, Any]:
        code = textwrap.dedent(code)
        script = f'_CODE = {code!r}\n{_PRELUDE}'
        child_env = dict(os.environ)
        child_env.update(env or {})
        try:
            proc = subprocess.run([sys.executable, '-c', script],
                                  capture_output=True, text=True,
                                  timeout=timeout, env=child_env,
                                  preexec_fn=preexec_fn)
        except subprocess.TimeoutExpired:
            pytest.fail(f'the child process hung for {timeout} s:\n{code}')
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            running = proc.stdout.rsplit('@@CASE@@', 1)[-1][:200]
            pytest.fail(f'the child process died by {name} (last case '
                        f'started: {running.strip()!r}):\n{code}\n'
                        f'stderr:\n{proc.stderr[-3000:]}')
        marker = '@@RESULT@@'
        if marker not in proc.stdout:
            pytest.fail(f'the child process exited with {proc.returncode} '
                        f'and no report:\n{code}\nstderr:\n'
                        f'{proc.stderr[-3000:]}')
        result = json.loads(proc.stdout.rsplit(marker, 1)[1].strip())
        result['stdout'] = proc.stdout.rsplit(marker, 1)[0]
        result['stderr'] = proc.stderr
        return result


    def cases(self, setup: str, cases: Dict[str, str], timeout: float = 300,
              env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        r"""Runs every snippet of :obj:`cases` after :obj:`setup` in one
        child interpreter (one start-up for all) and returns, per case, a
        dict with :obj:`error`, :obj:`mro` and :obj:`message` as
        :meth:`__call__` does. A signal fails the test naming the case that
        was running."""
        code = [textwrap.dedent(setup), 'import json as _json, sys as _sys',
                '_results = {}']
        for name, snippet in cases.items():
            code += [
                f'print("@@CASE@@", {name!r}, flush=True)', 'try:',
                textwrap.indent(textwrap.dedent(snippet), '    '),
                'except Exception as _e:',
                f'    _results[{name!r}] = {{"error": type(_e).__name__, '
                '"mro": [c.__name__ for c in type(_e).__mro__], '
                '"message": str(_e)}', 'else:',
                f'    _results[{name!r}] = {{"error": None}}'
            ]
        code += ['print(_json.dumps(_results))']
        out = self('\n'.join(code), timeout=timeout, env=env)
        if out['error'] is not None:
            running = out['stdout'].rsplit('@@CASE@@', 1)[-1].strip()
            pytest.fail(f'the cases stopped at {running!r}: {out}')
        return json.loads(out['stdout'].strip().rsplit('\n', 1)[-1])


@pytest.fixture(scope='session')
def isolated() -> Isolated:
    r"""Runs code in a child interpreter; a signal or a hang fails the
    test (see :class:`Isolated`)."""
    return Isolated()
