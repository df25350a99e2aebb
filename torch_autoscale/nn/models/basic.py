from typing import Any, Dict, List, Optional

import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Module, ModuleList

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.functional import check_dropout, dropout
from torch_autoscale.nn.linear import Linear
from torch_autoscale.utils.sparse import narrow_rows


class BasicGNN(ScalableGNN):
    r"""A stack of message-passing layers with optional input dropout,
    batch normalization, residual connections and linear input/output layers,
    trained with historical embeddings: the shared body of
    :class:`~torch_autoscale.nn.models.GCN`,
    :class:`~torch_autoscale.nn.models.GraphSAGE` and
    :class:`~torch_autoscale.nn.models.PNA` (the pattern of PyG's
    :class:`~torch_geometric.nn.models.basic_gnn.BasicGNN`).

    Subclasses implement :meth:`init_conv`, and override :meth:`conv` when
    their convolution takes no bipartite input.

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width.
        out_channels (int): The output width.
        num_layers (int): The number of convolutions.
        dropout (float, optional): Dropout probability before every
            convolution but the first. (default: :obj:`0.0`)
        drop_input (bool, optional): Whether to apply dropout to the input
            features as well. (default: :obj:`False`)
        batch_norm (bool, optional): Whether to apply batch normalization
            after every hidden convolution. (default: :obj:`False`)
        residual (bool, optional): Whether hidden layers add their input to
            their output (when the widths agree). (default: :obj:`False`)
        linear (bool, optional): Whether to embed the input with a linear
            layer and read out with another one, so that every convolution is
            :obj:`hidden_channels` wide. (default: :obj:`False`)
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
                 drop_input: bool = False, batch_norm: bool = False,
                 residual: bool = False, linear: bool = False, **kwargs):
        super().__init__(num_nodes, hidden_channels, num_layers, **kwargs)
        check_dropout(dropout, self.__class__.__name__)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.drop_input = drop_input
        self.batch_norm = batch_norm
        self.residual = residual
        self.linear = linear

        self.lins = ModuleList()
        if linear:
            self.lins.append(Linear(in_channels, hidden_channels))
            self.lins.append(Linear(hidden_channels, out_channels))

        self.convs = ModuleList()
        for layer in range(num_layers):
            in_dim = out_dim = hidden_channels
            if layer == 0 and not linear:
                in_dim = in_channels
            if layer == num_layers - 1 and not linear:
                out_dim = out_channels
            self.convs.append(self.init_conv(in_dim, out_dim, layer))

        # Only with batch_norm: parameters that no forward pass uses would
        # stall DistributedDataParallel (and gather weight decay for nothing).
        self.bns = ModuleList([
            BatchNorm1d(hidden_channels)
            for _ in range(num_layers if linear else num_layers - 1)
        ] if batch_norm else [])

    #: Whether :meth:`conv` accepts :obj:`torch.sparse_csr` node features
    #: (true when its first operation is a linear layer).
    sparse_conv_input: bool = False
    supports_recompute = True

    @property
    def supports_sparse_input(self) -> bool:
        return self.linear or self.sparse_conv_input

    def init_conv(self, in_channels: int, out_channels: int,
                  layer: int) -> Module:
        r"""Builds the convolution of layer :obj:`layer`."""
        raise NotImplementedError

    def conv(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        r"""Runs the convolution of layer :obj:`layer` for the rows of
        :obj:`adj_t` (default: a bipartite call
        :obj:`conv((x, x[:adj_t.size(0)]), adj_t)`)."""
        return self.convs[layer]((x, narrow_rows(x, adj_t.size(0))), adj_t)

    @property
    def reg_modules(self) -> List[Module]:
        r"""Modules with weight decay: every convolution but the last (all
        of them with :obj:`linear`) and the batch norms."""
        convs = self.convs if self.linear else self.convs[:-1]
        return list(convs) + list(self.bns)

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""Modules without weight decay: the last convolution (the linear
        layers with :obj:`linear`)."""
        return list(self.lins) if self.linear else [self.convs[-1]]

    def reset_parameters(self):
        super().reset_parameters()
        for module in list(self.lins) + list(self.convs) + list(self.bns):
            module.reset_parameters()

    def _hidden(self, layer: int, h: Tensor, x: Tensor) -> Tensor:
        # Batch norm, residual and activation of a hidden layer.
        if self.batch_norm:
            h = self.bns[layer](h)
        if self.residual and h.size(-1) == x.size(-1):
            h = h + narrow_rows(x, h.size(0)).to_dense()
        return h.relu()

    def _embed(self, x: Tensor) -> Tensor:
        if self.drop_input:
            x = dropout(x, p=self.dropout, training=self.training)
        if self.linear:
            x = self.lins[0](x).relu()
            x = dropout(x, p=self.dropout, training=self.training)
        return x

    def _readout(self, h: Tensor, x: Tensor) -> Tensor:
        if not self.linear:
            return h
        h = self._hidden(self.num_layers - 1, h, x)
        h = dropout(h, p=self.dropout, training=self.training)
        return self.lins[1](h)

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        x = self._embed(x)
        for layer, history in enumerate(self.histories):
            h = self.run_layer(layer, self._layer, layer, x, adj_t)
            x = self.push_and_pull(history, h, batch)
        return self.run_layer(self.num_layers - 1, self._layer,
                              self.num_layers - 1, x, adj_t)

    def _layer(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        # Layer `layer` from its input: dropout (hidden layers; the input's
        # is in `_embed`), convolution, then activation or readout.
        if layer > 0:
            x = dropout(x, p=self.dropout, training=self.training)
        h = self.conv(layer, x, adj_t)
        if layer < self.num_layers - 1:
            return self._hidden(layer, h, x)
        return self._readout(h, x)

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        if layer == 0:
            x = self._embed(x)
        return self._layer(layer, x, adj_t)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers})')
