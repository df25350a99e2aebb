r"""Functional helpers shared by the models."""
import torch
import torch.nn.functional as F
from torch import Tensor

from torch_autoscale.utils.sparse import sparse_csr


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout for dense and :obj:`torch.sparse_csr` inputs.

    For a sparse matrix only the stored values are dropped and rescaled:
    zeros stay zero either way, so the result has the distribution of
    :func:`torch.nn.functional.dropout` on the dense matrix, at a cost
    proportional to the number of non-zeros (bag-of-words features such as
    Coauthor-CS's are about 1% dense).

    Args:
        x (torch.Tensor): The input.
        p (float, optional): The probability of zeroing an element.
            (default: :obj:`0.5`)
        training (bool, optional): Dropout is the identity unless
            :obj:`True`. (default: :obj:`True`)
    """
    if x.layout == torch.strided:
        return F.dropout(x, p=p, training=training)
    if x.layout != torch.sparse_csr:
        raise ValueError(f"'x' must be a dense or torch.sparse_csr tensor "
                         f"(got layout {x.layout}); convert sparse features "
                         f"with '.to_sparse_csr()'")
    if not training or p == 0.0:
        return x
    value = F.dropout(x.values(), p=p, training=True)
    return sparse_csr(x.crow_indices(), x.col_indices(), value, x.size())
