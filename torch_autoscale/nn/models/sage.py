from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Module, ModuleList
from torch_geometric.nn import SAGEConv

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN


class GraphSAGE(ScalableGNN):
    r"""The GraphSAGE network from `"Inductive Representation Learning on
    Large Graphs" <https://arxiv.org/abs/1706.02216>`_ with mean aggregation,
    trained with historical embeddings
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_) instead of neighbour
    sampling.

    .. math::
        \mathbf{h}_i^{(\ell+1)} = \sigma\left(\mathbf{W}_1^{(\ell)}
        \mathbf{h}_i^{(\ell)} + \mathbf{W}_2^{(\ell)} \cdot
        \mathrm{mean}_{j \in \mathcal{N}(i)} \mathbf{h}_j^{(\ell)}\right)

    Every hidden convolution is followed by optional batch normalization, an
    optional residual connection and a ReLU. The mean runs over the edges of
    :obj:`adj_t` weighted by its values, so hand in an adjacency with unit
    values (the default of :func:`~torch_autoscale.utils.csr_adj_t`).

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width.
        out_channels (int): The output width.
        num_layers (int): The number of convolutions.
        dropout (float, optional): Dropout probability before every
            convolution but the first. (default: :obj:`0.0`)
        batch_norm (bool, optional): Whether to apply batch normalization
            after every hidden convolution. (default: :obj:`False`)
        residual (bool, optional): Whether hidden layers add their input to
            their output (when the widths agree). (default: :obj:`False`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`pool_size`, :obj:`buffer_size`, :obj:`history_dtype`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 out_channels: int, num_layers: int, dropout: float = 0.0,
                 batch_norm: bool = False, residual: bool = False, **kwargs):
        super().__init__(num_nodes, hidden_channels, num_layers, **kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{self.__class__.__name__}: 'dropout' must lie "
                             f"in [0, 1) (got {dropout})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual

        self.convs = ModuleList()
        for i in range(num_layers):
            in_dim = in_channels if i == 0 else hidden_channels
            out_dim = out_channels if i == num_layers - 1 else hidden_channels
            self.convs.append(SAGEConv(in_dim, out_dim, aggr='mean'))

        self.bns = ModuleList([
            BatchNorm1d(hidden_channels) for _ in range(num_layers - 1)
        ])

    @property
    def reg_modules(self) -> List[Module]:
        r"""The modules whose parameters get weight decay: every convolution
        but the last and the batch norms (the split of
        :class:`~torch_autoscale.nn.models.GCN`)."""
        return list(self.convs[:-1]) + list(self.bns)

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""The modules whose parameters get :obj:`nonreg_weight_decay`: the
        last convolution."""
        return [self.convs[-1]]

    def reset_parameters(self):
        super().reset_parameters()
        for module in list(self.convs) + list(self.bns):
            module.reset_parameters()

    def _conv(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        return self.convs[layer]((x, x[:adj_t.size(0)]), adj_t)

    def _hidden(self, layer: int, h: Tensor, x: Tensor) -> Tensor:
        # Batch norm, residual and activation of a layer that has a history.
        if self.batch_norm:
            h = self.bns[layer](h)
        if self.residual and h.size(-1) == x.size(-1):
            h = h + x[:h.size(0)]
        return h.relu()

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        for layer, history in enumerate(self.histories):
            h = self._hidden(layer, self._conv(layer, x, adj_t), x)
            x = self.push_and_pull(history, h, batch)
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self._conv(self.num_layers - 1, x, adj_t)

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        if layer > 0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        h = self._conv(layer, x, adj_t)
        if layer < self.num_layers - 1:
            h = self._hidden(layer, h, x)
        return h

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers})')
