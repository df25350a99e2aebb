import math
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Module, ModuleList

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.conv import CachedGCN2Conv
from torch_autoscale.nn.functional import check_dropout, dropout
from torch_autoscale.nn.linear import Linear


class GCNII(ScalableGNN):
    r"""The deep graph convolutional network with initial residual and
    identity mapping from `"Simple and Deep Graph Convolutional Networks"
    <https://arxiv.org/abs/2007.02133>`_, trained with historical embeddings
    (GNNAutoScale).

    .. math::
        \mathbf{H}^{(\ell+1)} = \sigma\left(\left((1 - \alpha)
        \hat{\mathbf{P}} \mathbf{H}^{(\ell)} + \alpha \mathbf{H}^{(0)}
        \right) \left((1 - \beta_\ell) \mathbf{I} + \beta_\ell
        \mathbf{W}^{(\ell)}\right)\right), \qquad
        \beta_\ell = \log\left(\frac{\theta}{\ell} + 1\right)

    where :math:`\hat{\mathbf{P}} = \hat{\mathbf{D}}^{-1/2} \hat{\mathbf{A}}
    \hat{\mathbf{D}}^{-1/2}` and :math:`\mathbf{H}^{(0)} = \mathrm{ReLU}(
    \mathbf{X} \mathbf{W}_{in})`; a linear layer reads out the last
    :math:`\mathbf{H}`. With :obj:`shared_weights=False`, the initial residual
    gets a weight matrix of its own (GCNII*). All :obj:`num_layers`
    convolutions are :obj:`hidden_channels` wide; every one but the last owns
    a history of its output.

    The convolutions do not normalize: hand in an :obj:`adj_t` normalized on
    the *whole* graph before it is partitioned, *e.g.* with
    :func:`torch_geometric.nn.conv.gcn_conv.gcn_norm` (as for
    :class:`~torch_autoscale.nn.models.GCN`).

    Following the reference recipe, the convolutions (and batch
    normalizations) and the two linear layers get separate weight decays (see
    :meth:`param_groups`).

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The width of every convolution.
        out_channels (int): The output width.
        num_layers (int): The number of convolutions.
        alpha (float): The strength :math:`\alpha` of the initial residual.
        theta (float): The hyperparameter :math:`\theta` of the identity
            mapping strength :math:`\beta_\ell`.
        shared_weights (bool, optional): Whether the propagated and the
            initial features share one weight matrix (GCNII); otherwise each
            has its own (GCNII*). (default: :obj:`True`)
        dropout (float, optional): Dropout probability of the input of every
            convolution and of the read-out. (default: :obj:`0.0`)
        drop_input (bool, optional): Whether to apply dropout to the input
            features as well. (default: :obj:`False`)
        batch_norm (bool, optional): Whether to apply batch normalization
            after every convolution. (default: :obj:`False`)
        residual (bool, optional): Whether every convolution adds its input
            to its output. (default: :obj:`False`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`pool_size`, :obj:`buffer_size`, :obj:`reg_weight`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    supports_sparse_input = True
    expects_normalized_adj = True

    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 out_channels: int, num_layers: int, alpha: float,
                 theta: float, shared_weights: bool = True,
                 dropout: float = 0.0, drop_input: bool = False,
                 batch_norm: bool = False, residual: bool = False, **kwargs):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"'alpha' (initial residual strength) must lie "
                             f"in [0, 1] (got {alpha})")
        if not (isinstance(theta, (int, float)) and theta > 0
                and math.isfinite(theta)):
            raise ValueError(f"'theta' must be a positive number (got "
                             f"{theta!r}); the paper uses 0.5 or so")
        check_dropout(dropout, self.__class__.__name__)
        super().__init__(num_nodes, hidden_channels, num_layers, **kwargs)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.alpha = alpha
        self.theta = theta
        self.shared_weights = shared_weights
        self.dropout = dropout
        self.drop_input = drop_input
        self.batch_norm = batch_norm
        self.residual = residual

        self.lins = ModuleList([
            Linear(in_channels, hidden_channels),
            Linear(hidden_channels, out_channels),
        ])
        self.convs = ModuleList([
            CachedGCN2Conv(hidden_channels, alpha=alpha, theta=theta,
                           layer=i + 1, shared_weights=shared_weights,
                           normalize=False)
            for i in range(num_layers)
        ])
        self.bns = ModuleList([
            BatchNorm1d(hidden_channels) for _ in range(num_layers)
        ] if batch_norm else [])

    @property
    def reg_modules(self) -> List[Module]:
        r"""The modules of the first parameter group: convolutions and batch
        normalizations."""
        return list(self.convs) + list(self.bns)

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""The modules of the second parameter group: the input and output
        linear layers."""
        return list(self.lins)

    def reset_parameters(self):
        super().reset_parameters()
        for module in list(self.lins) + list(self.convs) + list(self.bns):
            module.reset_parameters()

    def _embed(self, x: Tensor) -> Tensor:
        if self.drop_input:
            x = dropout(x, p=self.dropout, training=self.training)
        return self.lins[0](x).relu()

    def _conv(self, layer: int, x: Tensor, x_0: Tensor,
              adj_t: Tensor) -> Tensor:
        # 'x' holds every column of 'adj_t', 'x_0' at least its rows.
        x = dropout(x, p=self.dropout, training=self.training)
        h = self.convs[layer](x, x_0, adj_t)
        if self.batch_norm:
            h = self.bns[layer](h)
        if self.residual:
            h = h + x[:h.size(0)]
        return h.relu()

    def _read_out(self, h: Tensor) -> Tensor:
        h = dropout(h, p=self.dropout, training=self.training)
        return self.lins[1](h)

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        x = x_0 = self._embed(x)
        for layer, history in enumerate(self.histories):
            x = self._conv(layer, x, x_0, adj_t)
            x = self.push_and_pull(history, x, batch)
        return self._read_out(self._conv(self.num_layers - 1, x, x_0, adj_t))

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        if layer == 0:
            x = self._embed(x)
            state['x_0'] = x[:adj_t.size(0)]
        h = self._conv(layer, x, state['x_0'], adj_t)
        return self._read_out(h) if layer == self.num_layers - 1 else h

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers}, '
                f'alpha={self.alpha}, theta={self.theta})')
