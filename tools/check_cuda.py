r"""Compiles every CUDA source of ``_C`` with nvcc, on a machine without a GPU.

A check, not a build: each ``.cu`` file is compiled to an object file
(``nvcc -c``) with the flags ``setup.py`` and :obj:`torch.utils.cpp_extension`
give it in a ``FORCE_CUDA=1`` build, against the installed torch's headers,
so a CUDA user's build error shows up here. Nothing is linked (a CPU torch
ships no CUDA libraries).

nvcc and the CUDA headers come from PyPI (``make check-cuda`` installs
``nvidia-cuda-nvcc``, ``nvidia-cuda-runtime``, ``nvidia-cuda-cccl`` and
``nvidia-cuda-crt`` with ``pip --target``). A CPU build of torch ships the
c10/ATen CUDA headers except one that its CMake build generates,
``c10/cuda/impl/cuda_cmake_macros.h`` (included by ``c10/cuda/CUDAMacros.h``);
its stand-in, written into ``BUILD/include``, defines what a CUDA torch's
shared-library build defines there, ``C10_CUDA_BUILD_SHARED_LIBS``.

Usage: ``python tools/check_cuda.py --toolkit DIR [--build DIR] [FILE.cu...]``
(every ``csrc/**/*.cu`` by default). Architectures: ``--arch`` or
``TORCH_CUDA_ARCH_LIST`` (default 8.0: one architecture keeps the check fast;
the device code is compiled and assembled by ptxas for it). Exits 1, printing
nvcc's errors, when a file does not compile.
"""
import argparse
import glob
import importlib.util
import inspect
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

CMAKE_MACROS = '''\
#pragma once
// Stand-in for the header torch's CMake build generates from
// c10/cuda/impl/cuda_cmake_macros.h.in; a CPU wheel of torch does not ship
// it. Written by tools/check_cuda.py, used only to compile-check .cu files.
#define C10_CUDA_BUILD_SHARED_LIBS
'''


def find_nvcc(toolkit):
    r"""The CUDA home under ``toolkit``: a CUDA installation, or a
    ``pip --target`` folder holding ``nvidia/cu*/bin/nvcc``."""
    for home in [toolkit] + sorted(glob.glob(osp.join(toolkit, 'nvidia',
                                                      'cu*'))):
        if osp.exists(osp.join(home, 'bin', 'nvcc')):
            return home
    raise SystemExit(f'check_cuda: no bin/nvcc under {toolkit}')


def load_setup():
    spec = importlib.util.spec_from_file_location(
        'torch_autoscale_setup', osp.join(ROOT, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines; setup() runs only as __main__
    return module


def arch_flags(arch_list):
    flags = []
    for arch in arch_list.replace(',', ';').replace(' ', ';').split(';'):
        if not arch or not arch[0].isdigit():  # '', 'native': no GPU here
            continue
        num = arch.split('+')[0].replace('.', '')
        flags.append(f'-gencode=arch=compute_{num},code=sm_{num}')
        if arch.endswith('+PTX'):
            flags.append(f'-gencode=arch=compute_{num},code=compute_{num}')
    return flags or arch_flags('8.0')


def nvcc_command(home, build, arch_list):
    import torch.utils.cpp_extension as cpp

    setup = load_setup()
    options = setup.native_options(with_cuda=True)
    # The C++ standard torch.utils.cpp_extension compiles extensions with.
    std = '-std=c++20' if "'-std=c++20'" in inspect.getsource(cpp) \
        else '-std=c++17'
    include = [osp.join(build, 'include')] + options['include_dirs'] + \
        cpp.include_paths() + [
            osp.join(home, 'include'),
            osp.join(home, 'include', 'cccl'),
            sysconfig.get_paths()['include'],
        ]
    defines = [
        f'-D{name}' if value is None else f'-D{name}={value}'
        for name, value in options['define_macros']
    ] + ['-DTORCH_API_INCLUDE_EXTENSION_H', '-DTORCH_EXTENSION_NAME=_C']
    return ([osp.join(home, 'bin', 'nvcc')] + cpp.COMMON_NVCC_FLAGS +
            ['--compiler-options', '-fPIC', std] + defines +
            [f'-I{path}' for path in include] +
            options['extra_compile_args']['nvcc'] + arch_flags(arch_list))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--toolkit', required=True,
                        help='CUDA home, or a pip --target folder with nvcc')
    parser.add_argument('--build', default=osp.join(ROOT, 'build',
                                                    'cuda-check'),
                        help='folder for the objects and the stand-in header')
    parser.add_argument('--arch', default=os.environ.get(
        'TORCH_CUDA_ARCH_LIST', '8.0'))
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    parser.add_argument('files', nargs='*')
    args = parser.parse_args(argv)

    files = args.files or sorted(
        glob.glob(osp.join(ROOT, 'csrc', '**', '*.cu'), recursive=True))
    if not files:
        raise SystemExit('check_cuda: no .cu files')
    home = find_nvcc(os.path.abspath(args.toolkit))
    build = osp.abspath(args.build)
    header = osp.join(build, 'include', 'c10', 'cuda', 'impl',
                      'cuda_cmake_macros.h')
    os.makedirs(osp.dirname(header), exist_ok=True)
    with open(header, 'w') as f:
        f.write(CMAKE_MACROS)
    command = nvcc_command(home, build, args.arch)

    def compile_one(src):
        rel = osp.relpath(osp.abspath(src), ROOT)
        obj = osp.join(build, 'obj', rel.replace(os.sep, '_') + '.o')
        os.makedirs(osp.dirname(obj), exist_ok=True)
        t = time.perf_counter()
        out = subprocess.run(command + ['-c', src, '-o', obj], cwd=ROOT,
                             capture_output=True, text=True)
        return rel, out, time.perf_counter() - t

    failed = 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for rel, out, seconds in pool.map(compile_one, files):
            if out.returncode == 0:
                print(f'check_cuda: {rel} compiles ({seconds:.1f} s)')
            else:
                failed += 1
                print(f'check_cuda: {rel} does NOT compile:\n{out.stdout}'
                      f'{out.stderr}', file=sys.stderr)
    if failed:
        print(f'check_cuda: {failed} of {len(files)} CUDA sources failed; '
              f'command: {" ".join(command)}', file=sys.stderr)
        return 1
    print(f'check_cuda: {len(files)} CUDA source(s) compile with '
          f'{osp.relpath(command[0], ROOT)} for {args.arch}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
