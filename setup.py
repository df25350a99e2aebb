r"""Builds :obj:`torch_autoscale._C` from ``csrc/``.

CPU kernels are always built; CUDA kernels (``csrc/ops/cuda/*.cu``) are added
when ``FORCE_CUDA=1`` or when :obj:`torch.cuda.is_available()`. ``DEBUG=1``
builds without optimization. Install with
``pip install --no-build-isolation -e .`` (torch must already be installed).
"""
import glob
import os
import os.path as osp

import torch
from setuptools import setup
from torch.utils.cpp_extension import (
    CUDA_HOME,
    BuildExtension,
    CppExtension,
    CUDAExtension,
)

ROOT = osp.dirname(osp.abspath(__file__))


def get_extensions():
    with_cuda = (torch.cuda.is_available() and CUDA_HOME is not None) or \
        os.getenv('FORCE_CUDA', '0') == '1'
    debug = os.getenv('DEBUG', '0') == '1'

    sources = sorted(
        glob.glob(osp.join('csrc', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', 'cpu', '*.cpp')))
    define_macros = []
    extra_compile_args = {
        'cxx': ['-O0', '-g'] if debug else ['-O3'],
    }
    extra_compile_args['cxx'] += ['-fopenmp'] if not debug else []
    extra_link_args = ['-fopenmp'] if not debug else []

    Extension = CppExtension
    if with_cuda:
        Extension = CUDAExtension
        sources += sorted(glob.glob(osp.join('csrc', 'ops', 'cuda', '*.cu')))
        define_macros += [('WITH_CUDA', None)]
        # Architectures come from TORCH_CUDA_ARCH_LIST or the installed torch
        # (torch.utils.cpp_extension picks them); none are hard-coded here.
        extra_compile_args['nvcc'] = ['-O0', '-g'] if debug else ['-O3']

    return [
        Extension(
            'torch_autoscale._C',
            sources,
            include_dirs=[osp.join(ROOT, 'csrc')],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
            py_limited_api=True,
        )
    ]


setup(
    ext_modules=get_extensions(),
    cmdclass={'build_ext': BuildExtension.with_options(use_ninja=True)},
    options={'bdist_wheel': {'py_limited_api': 'cp39'}},
)
