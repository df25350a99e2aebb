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


class SparseInputLinear(PyGLinear):
    r"""PyG's :class:`~torch_geometric.nn.dense.Linear` for dense and
    :obj:`torch.sparse_csr` inputs, with the sparse-input backward pass of
    :class:`Linear`. Arguments, parameters, initialization (lazy included)
    and :obj:`state_dict` keys are those of PyG's layer; build one from the
    input transform of a PyG convolution with :meth:`from_linear`.
    """
    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    @classmethod
    def from_linear(cls, lin: PyGLinear) -> 'SparseInputLinear':
        r"""The layer with the arguments of :obj:`lin` and its very
        parameters (the same :class:`~torch.nn.Parameter` objects, neither
        copied nor re-initialized).

        The new layer is constructed on the :obj:`meta` device, so that
        building it draws no random numbers: models initialize exactly as
        with :obj:`lin`.

        Args:
            lin (torch_geometric.nn.dense.Linear): The layer to take over.
        """
        if not isinstance(lin, PyGLinear):
            raise ValueError(f"{cls.__name__}.from_linear: 'lin' must be a "
                             f"torch_geometric.nn.dense.Linear (got "
                             f"{type(lin).__name__})")
        with torch.device('meta'):
            out = cls(lin.in_channels, lin.out_channels,
                      bias=lin.bias is not None,
                      weight_initializer=lin.weight_initializer,
                      bias_initializer=lin.bias_initializer)
        out.weight = lin.weight
        out.bias = lin.bias
        out.train(lin.training)
        return out


def sparse_input_linear(lin: torch.nn.Module) -> torch.nn.Module:
    r"""The PyG :class:`~torch_geometric.nn.dense.Linear` :obj:`lin` (the
    input transform of a PyG convolution) as a :class:`SparseInputLinear`
    that shares its parameters, for the sparse-input backward pass of
    :class:`Linear`; other modules (and :obj:`None`) are returned unchanged.
    Put the result in place of :obj:`lin`; parameters, initialization and
    :obj:`state_dict` keys stay as they are:

    .. code-block:: python

        conv = GATConv(in_channels, out_channels, heads)
        conv.lin = sparse_input_linear(conv.lin)

    Args:
        lin (torch.nn.Module, optional): The module to replace.
    """
    if type(lin) is PyGLinear:
        return SparseInputLinear.from_linear(lin)
    return lin
