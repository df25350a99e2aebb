from typing import Any, Dict, Optional

import torch
from torch import Tensor
from torch.nn import (
    BatchNorm1d,
    Identity,
    Linear,
    ModuleList,
    ReLU,
    Sequential,
)
from torch_geometric.nn import GINConv
from torch_geometric.nn.inits import reset

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.functional import check_dropout, dropout


class GIN(ScalableGNN):
    r"""The graph isomorphism network from `"How Powerful are Graph Neural
    Networks?" <https://arxiv.org/abs/1810.00826>`_, trained with historical
    embeddings (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_) and,
    optionally, Lipschitz regularization.

    The input is embedded by a linear layer and a ReLU; every layer then
    computes

    .. math::
        \mathbf{h}_i^{(\ell+1)} = g^{(\ell)}\left((1 + \epsilon^{(\ell)})
        \cdot \mathbf{h}_i^{(\ell)} + \sum_{j \in \mathcal{N}(i)}
        \mathbf{h}_j^{(\ell)}\right) + \mathbf{h}_i^{(\ell)}

    with a two-layer update MLP :math:`g^{(\ell)}` (linear, optional batch
    normalization, ReLU, linear, ReLU) and an optional skip connection; a
    final linear layer reads out. The sum runs over the edges of
    :obj:`adj_t` weighted by its values, so hand in an adjacency with unit
    values (the default of :func:`~torch_autoscale.utils.csr_adj_t`).

    With :obj:`reg_weight > 0`, training adds the Lipschitz penalty of
    :math:`g^{(\ell)}` for every layer :math:`0 < \ell < L - 1` (those that
    read and write histories) to :attr:`reg_loss`, as the GAS reference GIN
    does (with :obj:`reg_weight=1`).

    .. note::
        The reference GIN normalizes with batch statistics even at
        evaluation time, which makes a node's output depend on its
        mini-batch. Here batch normalization tracks running statistics, so
        :meth:`mini_inference` reproduces full-batch evaluation exactly.

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The width of the embedding and of every
            layer.
        out_channels (int): The output width.
        num_layers (int): The number of message-passing layers.
        dropout (float, optional): Dropout probability before every layer
            but the first and before the read-out. (default: :obj:`0.0`)
        batch_norm (bool, optional): Whether the update MLPs apply batch
            normalization. (default: :obj:`True`)
        residual (bool, optional): Whether every layer adds its input to its
            output. (default: :obj:`True`)
        train_eps (bool, optional): Whether :math:`\epsilon` is trainable
            (otherwise :math:`0`). (default: :obj:`True`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`reg_weight`, :obj:`reg_std`, :obj:`pool_size`,
            :obj:`buffer_size`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 out_channels: int, num_layers: int, dropout: float = 0.0,
                 batch_norm: bool = True, residual: bool = True,
                 train_eps: bool = True, **kwargs):
        super().__init__(num_nodes, hidden_channels, num_layers, **kwargs)
        check_dropout(dropout, self.__class__.__name__)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual

        self.lin_in = Linear(in_channels, hidden_channels)
        self.lin_out = Linear(hidden_channels, out_channels)
        # The update MLPs live outside the convolutions so that the
        # Lipschitz regularizer can perturb their inputs.
        self.convs = ModuleList([
            GINConv(Identity(), train_eps=train_eps)
            for _ in range(num_layers)
        ])
        self.mlps = ModuleList([
            Sequential(
                Linear(hidden_channels, hidden_channels),
                BatchNorm1d(hidden_channels) if batch_norm else Identity(),
                ReLU(),
                Linear(hidden_channels, hidden_channels),
                ReLU(),
            ) for _ in range(num_layers)
        ])

    def reset_parameters(self):
        super().reset_parameters()
        for module in [self.lin_in, self.lin_out] + list(self.convs):
            module.reset_parameters()
        for mlp in self.mlps:
            reset(mlp)

    def _layer(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        h = self.convs[layer]((x, x[:adj_t.size(0)]), adj_t)
        out = self.mlps[layer](h)
        if 0 < layer < self.num_layers - 1:
            self.lipschitz(self.mlps[layer], h, out=out)
        h = out
        if self.residual:
            h = h + x[:h.size(0)]
        return h

    def _readout(self, h: Tensor) -> Tensor:
        h = dropout(h, p=self.dropout, training=self.training)
        return self.lin_out(h)

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        x = self.lin_in(x).relu()
        for layer, history in enumerate(self.histories):
            h = self._layer(layer, x, adj_t)
            x = self.push_and_pull(history, h, batch)
            x = dropout(x, p=self.dropout, training=self.training)
        return self._readout(self._layer(self.num_layers - 1, x, adj_t))

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        if layer == 0:
            x = self.lin_in(x).relu()
        else:
            x = dropout(x, p=self.dropout, training=self.training)
        h = self._layer(layer, x, adj_t)
        if layer < self.num_layers - 1:
            return h
        return self._readout(h)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers})')
