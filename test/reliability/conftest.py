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
            pytest.fail(f'the child process died by {name}:\n{code}\n'
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


@pytest.fixture
def isolated() -> Isolated:
    r"""Runs code in a child interpreter; a signal or a hang fails the
    test (see :class:`Isolated`)."""
    return Isolated()
