r"""Runs the property tests of :mod:`property_ops` (every native op against
its pure-PyTorch path over valid and malformed input) in a child
interpreter, one op at a time, so that a crash in native code is a failed
test with its output rather than the end of the test run."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest

import torch_autoscale.typing

HERE = osp.dirname(osp.abspath(__file__))


@pytest.mark.skipif(not torch_autoscale.typing.WITH_NATIVE,
                    reason='torch_autoscale._C is not built')
@pytest.mark.parametrize('op', ['csr_transpose', 'relabel_one_hop',
                                'read_async', 'write_async'])
def test_native_op_matches_reference_on_malformed_input(op):
    cmd = [
        sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
        '--hypothesis-show-statistics',
        f'{osp.join(HERE, "property_ops.py")}::test_{op}'
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          cwd=osp.dirname(osp.dirname(HERE)),
                          env=dict(os.environ))
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    if proc.returncode < 0:
        pytest.fail(f'{op}: the child died by '
                    f'{signal.Signals(-proc.returncode).name}\n{output}')
    assert proc.returncode == 0, output
    assert '1 passed' in proc.stdout, output
