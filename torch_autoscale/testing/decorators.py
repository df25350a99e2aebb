r"""Decorators that skip or parametrize tests by the hardware and the native
extension present (the pattern of :mod:`torch_geometric.testing.decorators`).

:mod:`pytest` is imported when a decorator is applied, not when this module
is, so code outside the test suite can import :mod:`torch_autoscale.testing`
without it."""
from typing import Callable, List

import torch

import torch_autoscale.typing


def onlyCUDA(func: Callable) -> Callable:
    r"""Skips the test unless a CUDA device is present.

    Args:
        func (callable): The test.
    """
    import pytest
    return pytest.mark.skipif(not torch.cuda.is_available(),
                              reason='CUDA not available')(func)


def onlyNative(func: Callable) -> Callable:
    r"""Skips the test unless the native extension is loaded.

    Args:
        func (callable): The test.
    """
    import pytest
    return pytest.mark.skipif(not torch_autoscale.typing.WITH_NATIVE,
                              reason='torch_autoscale._C not built')(func)


def onlyCUDAOps(func: Callable) -> Callable:
    r"""Skips the test unless the native CUDA kernels and a GPU are
    present.

    Args:
        func (callable): The test.
    """
    import pytest
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
    :obj:`device`.

    Args:
        func (callable): The test, with a :obj:`device` argument.
    """
    import pytest
    return pytest.mark.parametrize('device', devices(),
                                   ids=lambda d: str(d))(func)
