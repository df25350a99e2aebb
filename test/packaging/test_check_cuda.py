r"""tools/check_cuda.py fails when a CUDA source does not compile.

Needs the nvcc that `make test` installs (TORCH_AUTOSCALE_CUDA_TOOLKIT); the
check of the real sources runs in `make check-cuda`, before pytest.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLKIT = os.environ.get('TORCH_AUTOSCALE_CUDA_TOOLKIT', '')

pytestmark = pytest.mark.skipif(
    not osp.isdir(TOOLKIT), reason='no CUDA toolkit (make test installs one)')


def check(tmp_path, source):
    path = tmp_path / 'kernel.cu'
    path.write_text(source)
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'check_cuda.py'),
         '--toolkit', TOOLKIT, '--build', str(tmp_path / 'build'),
         str(path)], capture_output=True, text=True, timeout=600)


def test_a_kernel_that_compiles_passes(tmp_path):
    out = check(tmp_path, '__global__ void scale(float* x, float a) {\n'
                '  x[threadIdx.x] *= a;\n}\n')
    assert out.returncode == 0, out.stderr
    assert 'compiles' in out.stdout
    assert (tmp_path / 'build' / 'include' / 'c10' / 'cuda' / 'impl' /
            'cuda_cmake_macros.h').exists()


def test_a_kernel_that_does_not_compile_fails(tmp_path):
    out = check(tmp_path, '__global__ void scale(float* x) {\n'
                '  x[threadIdx.x] *= not_declared;\n}\n')
    assert out.returncode == 1
    assert 'does NOT compile' in out.stderr
    assert 'not_declared' in out.stderr
