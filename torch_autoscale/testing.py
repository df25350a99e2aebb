r"""Decorators and helpers for the test suite (the pattern of
:mod:`torch_geometric.testing.decorators`)."""
import os
from typing import Callable, List, Optional

import pytest
import torch

import torch_autoscale.typing

DATA_ENV = 'TORCH_AUTOSCALE_DATA'


def onlyCUDA(func: Callable) -> Callable:
    r"""Skips the test unless a CUDA device is present."""
    return pytest.mark.skipif(not torch.cuda.is_available(),
                              reason='CUDA not available')(func)


def onlyNative(func: Callable) -> Callable:
    r"""Skips the test unless the native extension is loaded."""
    return pytest.mark.skipif(not torch_autoscale.typing.WITH_NATIVE,
                              reason='torch_autoscale._C not built')(func)


def onlyCUDAOps(func: Callable) -> Callable:
    r"""Skips the test unless the native CUDA kernels and a GPU are
    present."""
    return pytest.mark.skipif(
        not torch_autoscale.typing.WITH_CUDA_OPS,
        reason='native CUDA kernels or GPU not available')(func)


def devices() -> List[torch.device]:
    r"""The devices to parametrize a test with: CPU, plus CUDA if present."""
    out = [torch.device('cpu')]
    if torch.cuda.is_available():
        out.append(torch.device('cuda'))
    return out


def withCUDA(func: Callable) -> Callable:
    r"""Runs the test once per device in :func:`devices`, passing
    :obj:`device`."""
    return pytest.mark.parametrize('device', devices(),
                                   ids=lambda d: str(d))(func)


def data_root(*required: str) -> Optional[str]:
    r"""The folder of unpacked PyG dataset roots named by the
    :obj:`TORCH_AUTOSCALE_DATA` environment variable, if it holds all of
    :obj:`required` (relative paths); :obj:`None` otherwise."""
    root = os.environ.get(DATA_ENV)
    if not root or not os.path.isdir(root):
        return None
    if not all(os.path.exists(os.path.join(root, r)) for r in required):
        return None
    return root
