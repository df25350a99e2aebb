import subprocess
import sys

import torch

from torch_autoscale.testing import devices, onlyCUDA, withCUDA


def test_import_without_pytest():
    # Benchmarks import the package where pytest is not installed:
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import torch_autoscale.testing as t\n"
            "assert t.devices()[0].type == 'cpu'\n"
            "assert callable(t.load_script)\n")
    subprocess.run([sys.executable, '-c', code], check=True)


def test_devices():
    out = devices()
    assert out[0] == torch.device('cpu')
    assert len(out) == 1 + int(torch.cuda.is_available())


@withCUDA
def test_with_cuda(device):
    assert device in devices()


@onlyCUDA
def test_only_cuda():
    assert torch.cuda.is_available()


def test_marks():
    def f():
        pass

    marks = {m.name: m for m in onlyCUDA(f).pytestmark}
    assert marks['skipif'].args[0] == (not torch.cuda.is_available())
