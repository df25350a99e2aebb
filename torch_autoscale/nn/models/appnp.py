from typing import Any, Dict, List, Optional

import torch
from torch import Tensor
from torch.nn import Module, ModuleList

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.functional import check_dropout, dropout
from torch_autoscale.nn.linear import Linear
from torch_autoscale.utils.sparse import spmm


class APPNP(ScalableGNN):
    r"""The approximate personalized propagation of neural predictions from
    `"Predict then Propagate: Graph Neural Networks meet Personalized
    PageRank" <https://arxiv.org/abs/1810.05997>`_, trained with historical
    embeddings (GNNAutoScale).

    A two-layer MLP predicts, then :obj:`num_layers` (:math:`K`) steps of
    personalized PageRank propagate:

    .. math::
        \mathbf{X}^{(0)} &= \mathbf{W}_2\, \mathrm{ReLU}(\mathbf{W}_1
        \mathbf{X} + \mathbf{b}_1) + \mathbf{b}_2 \\
        \mathbf{X}^{(k+1)} &= (1 - \alpha) \hat{\mathbf{D}}^{-1/2}
        \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2} \mathbf{X}^{(k)} +
        \alpha \mathbf{X}^{(0)}

    Every step but the last owns a history, :obj:`out_channels` wide. The
    propagation does not normalize: hand in an :obj:`adj_t` normalized on the
    *whole* graph before it is partitioned, *e.g.* with
    :func:`torch_geometric.nn.conv.gcn_conv.gcn_norm` (as for
    :class:`~torch_autoscale.nn.models.GCN`).

    Following the reference recipe, only the first linear layer gets weight
    decay (see :meth:`param_groups`).

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width of the MLP.
        out_channels (int): The output width.
        num_layers (int): The number of propagation steps :math:`K`.
        alpha (float): The teleport probability :math:`\alpha`.
        dropout (float, optional): Dropout probability of the input features
            and of the hidden layer of the MLP. (default: :obj:`0.0`)
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
                 dropout: float = 0.0, **kwargs):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"'alpha' (teleport probability) must lie in "
                             f"[0, 1] (got {alpha})")
        check_dropout(dropout, self.__class__.__name__)
        super().__init__(num_nodes, out_channels, num_layers, **kwargs)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.alpha = alpha
        self.dropout = dropout

        self.lins = ModuleList([
            Linear(in_channels, hidden_channels),
            Linear(hidden_channels, out_channels),
        ])

    @property
    def reg_modules(self) -> List[Module]:
        r"""The modules whose parameters get weight decay: the first linear
        layer."""
        return [self.lins[0]]

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""The modules whose parameters get no weight decay: the second
        linear layer."""
        return [self.lins[1]]

    def reset_parameters(self):
        super().reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()

    def _predict(self, x: Tensor) -> Tensor:
        x = dropout(x, p=self.dropout, training=self.training)
        x = self.lins[0](x).relu()
        x = dropout(x, p=self.dropout, training=self.training)
        return self.lins[1](x)

    def _propagate(self, x: Tensor, x_0: Tensor, adj_t: Tensor) -> Tensor:
        # 'x_0' holds at least the rows of 'adj_t' (the in-batch nodes).
        return ((1 - self.alpha) * spmm(adj_t, x) +
                self.alpha * x_0[:adj_t.size(0)])

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        x = x_0 = self._predict(x)
        for history in self.histories:
            x = self._propagate(x, x_0, adj_t)
            x = self.push_and_pull(history, x, batch)
        return self._propagate(x, x_0, adj_t)

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        if layer == 0:
            x = self._predict(x)
            state['x_0'] = x[:adj_t.size(0)]
        return self._propagate(x, state['x_0'], adj_t)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers}, '
                f'alpha={self.alpha})')
