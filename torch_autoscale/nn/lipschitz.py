from typing import Callable, Optional

import torch
from torch import Tensor


def lipschitz_penalty(module: Callable[[Tensor], Tensor], h: Tensor,
                      std: float = 0.1,
                      out: Optional[Tensor] = None) -> Tensor:
    r"""The Lipschitz regularizer of `GNNAutoScale
    <https://arxiv.org/abs/2106.05609>`_ for a layer's update function
    :math:`g`:

    .. math::
        \frac{1}{|\mathcal{V}|} \sum_{v \in \mathcal{V}}
        \left\| g(\mathbf{h}_v + \boldsymbol{\epsilon}_v) - g(\mathbf{h}_v)
        \right\|_2, \qquad \boldsymbol{\epsilon}_v \sim
        \mathcal{N}(\mathbf{0}, \sigma^2 \mathbf{I})

    It estimates how much :math:`g` amplifies small perturbations of its
    input. Historical embeddings are such perturbations (they are stale), so
    penalizing it tightens the GAS approximation error bound. Gradients flow
    into the parameters of :obj:`module` and into :obj:`h`.

    Args:
        module (callable): The update function :math:`g`, *e.g.* a layer's
            MLP.
        h (torch.Tensor): Its inputs, one row per node.
        std (float, optional): The noise standard deviation :math:`\sigma`.
            (default: :obj:`0.1`)
        out (torch.Tensor, optional): :obj:`module(h)` when the caller has
            already computed it, saving one pass. (default: :obj:`None`)
    """
    if std < 0:
        raise ValueError(f"'std' must be non-negative (got {std})")
    if h.numel() == 0:
        return h.new_zeros(())
    eps = torch.randn_like(h) * std
    if out is None:
        out = module(h)
    return (module(h + eps) - out).norm(p=2, dim=-1).mean()
