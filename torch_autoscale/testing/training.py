r"""Short training loops for tests: GAS epochs with cross-entropy on the
in-batch nodes, and a full-batch pass that fits batch-norm statistics."""
from typing import Any, Iterable, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.nn import ScalableGNN


def fit_norm_statistics(model: ScalableGNN, data: Data) -> ScalableGNN:
    r"""Runs one full-batch forward pass in training mode, so that batch-norm
    running statistics are non-trivial, and switches :obj:`model` to
    evaluation mode.

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph, with :obj:`x` and
            :obj:`adj_t`.

    Returns:
        The model.
    """
    model.train()
    model(data.x, data.adj_t)
    return model.eval()


def train_losses(model: ScalableGNN, data: Data, ptr: Tensor, epochs: int,
                 lr: float = 0.01, batch_size: int = 2,
                 mask: Optional[str] = None, params: Optional[Any] = None,
                 weight_decay: float = 0.0,
                 reg_loss: bool = False) -> List[float]:
    r"""Trains :obj:`model` with GAS and Adam for :obj:`epochs` epochs of
    shuffled batches of :obj:`batch_size` clusters, minimizing the
    cross-entropy of the in-batch nodes.

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        epochs (int): The number of epochs.
        lr (float, optional): The learning rate. (default: :obj:`0.01`)
        batch_size (int, optional): Clusters per batch. (default: :obj:`2`)
        mask (str, optional): The node mask of :obj:`data` (such as
            :obj:`"train_mask"`) that selects the nodes of the loss; all
            in-batch nodes if :obj:`None`. (default: :obj:`None`)
        params (iterable, optional): The parameters or parameter groups to
            optimize, such as :meth:`~ScalableGNN.param_groups`; all of
            :obj:`model.parameters()` if :obj:`None`. (default: :obj:`None`)
        weight_decay (float, optional): Adam's default weight decay.
            (default: :obj:`0.0`)
        reg_loss (bool, optional): Whether to add :obj:`model.reg_loss` to
            the loss that is minimized (not to the one recorded).
            (default: :obj:`False`)

    Returns:
        The sum of the batch losses of every epoch.
    """
    params = model.parameters() if params is None else params
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    loader = SubgraphLoader(data, ptr, batch_size=batch_size, shuffle=True)
    losses = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for batch in loader:
            opt.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            y = batch.data.y[:batch.batch_size]
            if mask is not None:
                keep = getattr(batch.data, mask)[:batch.batch_size]
                out, y = out[keep], y[keep]
            loss = F.cross_entropy(out, y)
            (loss + model.reg_loss if reg_loss else loss).backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total)
    return losses


def train_gas_epoch(model: ScalableGNN, optimizer: torch.optim.Optimizer,
                    loader: Iterable) -> List[float]:
    r"""One GAS training epoch with cross-entropy on the in-batch nodes.

    Args:
        model (ScalableGNN): The model.
        optimizer (torch.optim.Optimizer): The optimizer.
        loader (iterable): The mini-batches, such as a
            :class:`~torch_autoscale.loader.SubgraphLoader`.

    Returns:
        The loss of every step.
    """
    model.train()
    losses = []
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch.data.x, batch.data.adj_t, batch)
        loss = F.cross_entropy(out, batch.data.y[:batch.batch_size])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
