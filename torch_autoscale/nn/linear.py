r"""Linear layers that take :obj:`torch.sparse_csr` node features and
multiply with their cached transpose in the backward pass (see
:func:`torch_autoscale.utils.sparse.linear`)."""
import torch
from torch import Tensor
from torch_geometric.nn.dense.linear import Linear as PyGLinear

from torch_autoscale.utils.sparse import linear


class Linear(torch.nn.Linear):
    r""":class:`torch.nn.Linear` for dense and :obj:`torch.sparse_csr`
    inputs. For sparse inputs, the weight gradient multiplies with the
    input's transpose, built once per input matrix by a counting sort and
    shared by the matrices :func:`~torch_autoscale.nn.functional.dropout`
    derives from it, where PyTorch sorts the entries afresh every step.
    Parameters and initialization are those of :class:`torch.nn.Linear`."""
    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


class _SparseInputPyGLinear(PyGLinear):
    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def sparse_input_linear(lin: torch.nn.Module) -> torch.nn.Module:
    r"""Gives the PyG :class:`~torch_geometric.nn.dense.Linear` :obj:`lin`
    (the input transform of a PyG convolution) the sparse-input backward
    pass of :class:`Linear`, in place: parameters, initialization and
    :obj:`state_dict` keys stay as they are. Other modules are returned
    unchanged.

    The convolution builds its :obj:`lin` itself, so the layer's class is
    switched rather than the layer rebuilt: the subclass only overrides
    :meth:`forward`.
    """
    if type(lin) is PyGLinear:
        lin.__class__ = _SparseInputPyGLinear
    return lin
