import torch

from torch_autoscale.testing import withCUDA
from torch_autoscale.utils import StepMemory


def step(num_rows: int, device) -> None:
    lin = torch.nn.Linear(16, 16).to(device)
    x = torch.randn(num_rows, 16, device=device)
    lin(lin(x).relu()).sum().backward()


@withCUDA
def test_step_memory_grows_with_the_input(device):
    sizes = []
    for num_rows in (100, 1000, 10000):
        with StepMemory(device) as mem:
            step(num_rows, device)
        sizes.append(mem.peak_bytes)
    assert sizes[0] < sizes[1] < sizes[2]
    if device.type == 'cpu':
        assert mem.kind == 'saved_activations'
        # Saved: x and the ReLU output (the second layer's input, the same
        # storage, counted once), 10000 x 16 floats each, plus the weight.
        assert sizes[2] == 2 * 10000 * 16 * 4 + 16 * 16 * 4
    with StepMemory(device) as mem:
        with torch.no_grad():
            step_free = torch.nn.Linear(16, 16).to(device)
            step_free(torch.randn(100, 16, device=device))
    if device.type == 'cpu':
        assert mem.peak_bytes == 0
