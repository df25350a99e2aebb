r"""Measuring the memory of a training step."""
from typing import Optional, Union

import torch


class StepMemory:
    r"""A context manager that measures the memory a block of code (one
    training step) needs.

    On a CUDA device it reports the peak of allocated device memory above
    what was allocated on entry (:func:`torch.cuda.max_memory_allocated`). On
    the CPU, where PyTorch keeps no allocator statistics, it reports the
    bytes of the distinct tensors autograd saves for the backward pass (the
    activations, which is what grows with the size of the input graph; the
    parameters and optimizer state are the same for every input), through
    :func:`torch.autograd.graph.saved_tensors_hooks`.

    .. code-block:: python

        with StepMemory('cpu') as mem:
            loss = model(batch).sum()
            loss.backward()
        print(mem.peak_bytes, mem.kind)

    Args:
        device (torch.device or str, optional): The device of the step.
            (default: :obj:`None`, the CPU)
    """
    def __init__(self, device: Optional[Union[str, torch.device]] = None):
        self.device = torch.device(device or 'cpu')
        self.peak_bytes = 0
        self.kind = ('cuda_allocated' if self.device.type == 'cuda' else
                     'saved_activations')
        self._seen = set()
        self._hooks = None
        self._base = 0

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), tensor.device)
            if key not in self._seen:
                self._seen.add(key)
                self.peak_bytes += storage.nbytes()
        except (RuntimeError, NotImplementedError):  # Sparse, meta, ...
            pass
        return tensor

    def __enter__(self) -> 'StepMemory':
        self.peak_bytes = 0
        self._seen = set()
        if self.kind == 'cuda_allocated':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._hooks = torch.autograd.graph.saved_tensors_hooks(
                self._pack, lambda tensor: tensor)
            self._hooks.__enter__()
        return self

    def __exit__(self, *args) -> None:
        if self.kind == 'cuda_allocated':
            torch.cuda.synchronize(self.device)
            self.peak_bytes = (torch.cuda.max_memory_allocated(self.device) -
                               self._base)
        else:
            self._hooks.__exit__(*args)
            self._hooks = None
            self._seen = set()
