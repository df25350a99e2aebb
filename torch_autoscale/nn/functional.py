r"""Functional helpers shared by the models."""
import torch
import torch.nn.functional as F
from torch import Tensor

from torch_autoscale.utils.sparse import with_values


def _dense_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    if (training and 0.0 < p < 1.0 and x.device.type == 'cpu'
            and x.is_floating_point()):
        # PyTorch draws the CPU dropout mask with 'bernoulli_', about three
        # times slower than uniform sampling; on wide input features it was
        # more than half of a training step. Same distribution: keep with
        # probability 1 - p, scale by 1 / (1 - p).
        scale = torch.rand(x.shape, dtype=x.dtype).ge_(p)
        return x * scale.mul_(1.0 / (1.0 - p))
    return F.dropout(x, p=p, training=training)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout for dense and :obj:`torch.sparse_csr` inputs.

    For a sparse matrix only the stored values are dropped and rescaled:
    zeros stay zero either way, so the result has the distribution of
    :func:`torch.nn.functional.dropout` on the dense matrix, at a cost
    proportional to the number of non-zeros (bag-of-words features such as
    Coauthor-CS's are about 1% dense). Dense CPU inputs draw their mask by
    uniform sampling, which is faster than
    :func:`torch.nn.functional.dropout`'s Bernoulli sampling on the CPU.

    Args:
        x (torch.Tensor): The input.
        p (float, optional): The probability of zeroing an element.
            (default: :obj:`0.5`)
        training (bool, optional): Dropout is the identity unless
            :obj:`True`. (default: :obj:`True`)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability 'p' must lie in [0, 1] (got "
                         f"{p})")
    if x.layout == torch.strided:
        return _dense_dropout(x, p, training)
    if x.layout != torch.sparse_csr:
        raise ValueError(f"'x' must be a dense or torch.sparse_csr tensor "
                         f"(got layout {x.layout}); convert sparse features "
                         f"with '.to_sparse_csr()'")
    if not training or p == 0.0:
        return x
    return with_values(x, _dense_dropout(x.values(), p, training=True))


def check_dropout(p: float, owner: str) -> None:
    r"""Raises a :class:`ValueError` naming :obj:`owner` unless the model
    dropout probability :obj:`p` lies in :obj:`[0, 1)`."""
    if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
        raise ValueError(f"{owner}: 'dropout' must lie in [0, 1) (got "
                         f"{p!r})")
