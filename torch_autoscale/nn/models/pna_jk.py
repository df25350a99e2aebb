from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Identity, Linear, Module, ModuleList
from torch_geometric.nn import JumpingKnowledge

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.functional import dropout
from torch_autoscale.nn.models.pna import BipartitePNAConv, check_pna_args


class PNA_JK(ScalableGNN):
    r"""The principal neighbourhood aggregation network from `"Principal
    Neighbourhood Aggregation for Graph Nets"
    <https://arxiv.org/abs/2004.05718>`_ with jumping knowledge from
    `"Representation Learning on Graphs with Jumping Knowledge Networks"
    <https://arxiv.org/abs/1806.03536>`_, trained with historical embeddings
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    The input is embedded by a linear layer (with optional batch
    normalization) and a ReLU; :obj:`num_layers` convolutions
    (:class:`~torch_autoscale.nn.models.pna.BipartitePNAConv`, all
    :obj:`hidden_channels` wide, each followed by optional batch
    normalization, an optional residual connection and a ReLU) transform it;
    the embedding and every layer's output are combined and read out by a
    linear layer:

    .. math::
        \mathbf{y}_i = \mathbf{W} \, \mathrm{JK}\left(\mathbf{h}_i^{(0)},
        \mathbf{h}_i^{(1)}, \ldots, \mathbf{h}_i^{(L)}\right)

    where :math:`\mathrm{JK}` is a concatenation or an element-wise maximum.
    Layers :math:`1, \ldots, L-1` own a history each; the in-batch rows of
    every layer are kept for the read-out, so the output is exact whenever
    the histories are. See :class:`~torch_autoscale.nn.models.pna.PNA` for
    the degree scalers and :obj:`deg`.

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The width of the embedding and of every
            convolution.
        out_channels (int): The output width.
        num_layers (int): The number of convolutions.
        aggregators (list of str): The aggregators, from :obj:`"sum"`,
            :obj:`"mean"`, :obj:`"min"`, :obj:`"max"`, :obj:`"var"` and
            :obj:`"std"`.
        scalers (list of str): The degree scalers, from :obj:`"identity"`,
            :obj:`"amplification"`, :obj:`"attenuation"`, :obj:`"linear"`
            and :obj:`"inverse_linear"`.
        deg (torch.Tensor): The in-degree histogram of the graph, see
            :func:`~torch_autoscale.nn.models.pna.degree_histogram`.
        dropout (float, optional): Dropout probability before every
            convolution but the first and before the read-out.
            (default: :obj:`0.0`)
        drop_input (bool, optional): Whether to apply dropout to the input
            features as well. (default: :obj:`False`)
        batch_norm (bool, optional): Whether to apply batch normalization
            after the embedding and every convolution.
            (default: :obj:`False`)
        residual (bool, optional): Whether every convolution adds its input
            to its output. (default: :obj:`False`)
        jk (str, optional): How layer outputs are combined, :obj:`"cat"`
            (concatenation) or :obj:`"max"` (element-wise maximum).
            (default: :obj:`"cat"`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`pool_size`, :obj:`buffer_size`, :obj:`history_dtype`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 out_channels: int, num_layers: int,
                 aggregators: Sequence[str], scalers: Sequence[str],
                 deg: Tensor, dropout: float = 0.0, drop_input: bool = False,
                 batch_norm: bool = False, residual: bool = False,
                 jk: str = 'cat', **kwargs):
        super().__init__(num_nodes, hidden_channels, num_layers, **kwargs)
        aggregators, scalers, deg = check_pna_args(
            self.__class__.__name__, aggregators, scalers, deg, dropout)
        if jk not in ('cat', 'max'):
            raise ValueError(f"{self.__class__.__name__}: 'jk' must be 'cat' "
                             f"or 'max' (got {jk!r})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.aggregators = aggregators
        self.scalers = scalers
        self.dropout = dropout
        self.drop_input = drop_input
        self.batch_norm = batch_norm
        self.residual = residual
        self.jk_mode = jk

        self.lin_in = Linear(in_channels, hidden_channels)
        self.bn_in = BatchNorm1d(hidden_channels) if batch_norm else Identity()
        self.convs = ModuleList([
            BipartitePNAConv(hidden_channels, hidden_channels, aggregators,
                             scalers, deg) for _ in range(num_layers)
        ])
        self.bns = ModuleList([
            BatchNorm1d(hidden_channels) for _ in range(num_layers)
        ] if batch_norm else [])
        self.jk = JumpingKnowledge(jk)
        num_inputs = num_layers + 1 if jk == 'cat' else 1
        self.lin_out = Linear(num_inputs * hidden_channels, out_channels)

    @property
    def reg_modules(self) -> List[Module]:
        r"""The modules whose parameters get weight decay: the convolutions
        and their batch norms (as in the GNNAutoScale reference
        configurations)."""
        return list(self.convs) + list(self.bns)

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""The modules whose parameters get :obj:`nonreg_weight_decay`: the
        input embedding (with its batch norm) and the read-out."""
        return [self.lin_in, self.bn_in, self.lin_out]

    def reset_parameters(self):
        super().reset_parameters()
        modules = [self.lin_in, self.lin_out] + list(self.convs) + \
            list(self.bns)
        if self.batch_norm:
            modules.append(self.bn_in)
        for module in modules:
            module.reset_parameters()

    def _embed(self, x: Tensor) -> Tensor:
        if self.drop_input:
            x = dropout(x, p=self.dropout, training=self.training)
        return self.bn_in(self.lin_in(x)).relu()

    def _layer(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        h = self.convs[layer]((x, x[:adj_t.size(0)]), adj_t)
        if self.batch_norm:
            h = self.bns[layer](h)
        if self.residual:
            h = h + x[:h.size(0)]
        return h.relu()

    def _readout(self, xs: List[Tensor]) -> Tensor:
        h = self.jk(xs)
        h = dropout(h, p=self.dropout, training=self.training)
        return self.lin_out(h)

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        x = self._embed(x)
        xs = [x[:adj_t.size(0)]]
        for layer, history in enumerate(self.histories):
            h = self._layer(layer, x, adj_t)
            xs.append(h)
            x = self.push_and_pull(history, h, batch)
            x = dropout(x, p=self.dropout, training=self.training)
        xs.append(self._layer(self.num_layers - 1, x, adj_t))
        return self._readout(xs)

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        # The read-out needs every layer's in-batch rows; keep them in host
        # memory until the last layer, so that a model on a GPU does not hold
        # num_layers + 1 embeddings of the whole graph there.
        if layer == 0:
            x = self._embed(x)
            state['xs'] = [x[:adj_t.size(0)].cpu()]
        else:
            x = dropout(x, p=self.dropout, training=self.training)
        h = self._layer(layer, x, adj_t)
        if layer < self.num_layers - 1:
            state['xs'].append(h.cpu())
            return h
        xs = [t.to(h.device) for t in state.pop('xs')] + [h]
        return self._readout(xs)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers}, '
                f'jk={self.jk_mode})')
