import pytest
import torch

import torch_autoscale.typing
from torch_autoscale.testing import DATA_ENV, data_root


@pytest.fixture
def no_native(monkeypatch):
    r"""Runs a test with the native extension disabled, so the pure-PyTorch
    fallbacks are exercised."""
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', False)
    monkeypatch.setattr(torch_autoscale.typing, 'WITH_CUDA_OPS', False)
    yield


@pytest.fixture(params=['native', 'fallback'])
def backend(request, monkeypatch):
    r"""Runs a test once with the native extension (when built) and once with
    the pure-PyTorch fallbacks."""
    if request.param == 'native':
        if not torch_autoscale.typing.WITH_NATIVE:
            pytest.skip('torch_autoscale._C not built')
    else:
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_NATIVE', False)
        monkeypatch.setattr(torch_autoscale.typing, 'WITH_CUDA_OPS', False)
    yield request.param


@pytest.fixture
def cora_root():
    r"""The dataset folder holding Planetoid/Cora; skips when absent."""
    root = data_root('Planetoid/Cora/raw')
    if root is None:
        pytest.skip(f'Cora not found: set {DATA_ENV} to a folder unpacked '
                    f'with the offline dataset archives')
    return root


@pytest.fixture
def tu_root():
    r"""The dataset folder holding TUDataset/PROTEINS; skips when absent."""
    root = data_root('TUDataset/PROTEINS/raw')
    if root is None:
        pytest.skip(f'PROTEINS not found: set {DATA_ENV} to a folder '
                    f'unpacked with the offline dataset archives')
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(12345)


@pytest.fixture(autouse=True)
def _one_thread():
    r"""Test graphs are tiny: intra-op threads cost more than they save,
    and on a busy machine every parallel region of many small scatters can
    stall for a scheduler time slice (minutes instead of seconds)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)
