from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module, ModuleList
from torch_geometric.index import ptr2index
from torch_geometric.nn import GATConv

from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.nn.base import ScalableGNN
from torch_autoscale.nn.functional import check_dropout, dropout
from torch_autoscale.nn.linear import sparse_input_linear


def _attention_edges(adj_t: Tensor) -> Tensor:
    # The (source, target) edges of a (bipartite) CSR adjacency whose rows are
    # targets and whose columns are sources, with one self-loop per target:
    # row i and column i are the same node, since in-batch nodes come first
    # in both. Self-loops already in 'adj_t' are dropped first, so full-batch
    # and mini-batch propagation see the same edges whatever the data holds.
    if not isinstance(adj_t, Tensor) or adj_t.layout != torch.sparse_csr:
        raise ValueError(
            f"'GAT' expects 'adj_t' as a torch.sparse_csr tensor (got "
            f"{type(adj_t).__name__} with layout "
            f"{getattr(adj_t, 'layout', None)}); build one with "
            f"torch_autoscale.utils.csr_adj_t(edge_index, num_nodes)")
    num_rows, num_cols = adj_t.size(0), adj_t.size(1)
    col = adj_t.col_indices().long()
    row = ptr2index(adj_t.crow_indices().long(), output_size=col.numel())
    mask = row != col
    loop = torch.arange(min(num_rows, num_cols), device=col.device)
    return torch.stack([torch.cat([col[mask], loop]),
                        torch.cat([row[mask], loop])], dim=0)


class GAT(ScalableGNN):
    r"""The graph attention network from `"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_, trained with historical embeddings
    (GNNAutoScale).

    .. math::
        \mathbf{h}^{(\ell+1)}_i = \mathop{\Big\Vert}_{k=1}^{K} \mathrm{ELU}
        \left(\sum_{j \in \mathcal{N}(i) \cup \{ i \}} \alpha^{(\ell,k)}_{i,j}
        \mathbf{W}^{(\ell,k)} \mathbf{h}^{(\ell)}_j\right), \qquad
        \alpha^{(\ell,k)}_{i,j} = \mathrm{softmax}_j\left(
        \mathrm{LeakyReLU}\left(\mathbf{a}^{(\ell,k)\top}
        [\mathbf{W}^{(\ell,k)} \mathbf{h}^{(\ell)}_i \,\Vert\,
        \mathbf{W}^{(\ell,k)} \mathbf{h}^{(\ell)}_j]\right)\right)

    Hidden layers concatenate their :obj:`hidden_heads` heads (followed by
    ELU); the last layer averages its :obj:`out_heads` heads. Every history
    is :obj:`hidden_channels * hidden_heads` wide.

    Attention is computed per edge of :obj:`adj_t`; its values are ignored,
    so the adjacency of a :class:`~torch_autoscale.nn.models.GCN` (normalized
    or not) serves as well. Every node attends to itself: self-loops in
    :obj:`adj_t` are dropped and exactly one is added per target node, so
    that full-batch and mini-batch propagation see the same edges whether or
    not the data holds self-loops.

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The width of every head of a hidden layer.
        hidden_heads (int): The number of heads of a hidden layer.
        out_channels (int): The output width.
        out_heads (int): The number of heads of the last layer, averaged.
        num_layers (int): The number of attention layers.
        dropout (float, optional): Dropout probability of the input of every
            layer (input features included) and of the attention
            coefficients. (default: :obj:`0.0`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`pool_size`, :obj:`buffer_size`, :obj:`reg_weight`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    supports_sparse_input = True

    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 hidden_heads: int, out_channels: int, out_heads: int,
                 num_layers: int, dropout: float = 0.0, **kwargs):
        for name, value in (('hidden_heads', hidden_heads),
                            ('out_heads', out_heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'GAT' needs '{name}' to be a positive "
                                 f"integer (got {value!r})")
        check_dropout(dropout, self.__class__.__name__)
        super().__init__(num_nodes, hidden_channels * hidden_heads,
                         num_layers, **kwargs)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.hidden_heads = hidden_heads
        self.out_channels = out_channels
        self.out_heads = out_heads
        self.dropout = dropout

        self.convs = ModuleList()
        for i in range(num_layers):
            in_dim = in_channels if i == 0 else hidden_channels * hidden_heads
            if i < num_layers - 1:
                conv = GATConv(in_dim, hidden_channels, hidden_heads,
                               concat=True, dropout=dropout,
                               add_self_loops=False)
            else:
                conv = GATConv(in_dim, out_channels, out_heads, concat=False,
                               dropout=dropout, add_self_loops=False)
            # Sparse input features: multiply with their cached transpose
            # in the backward pass of the input transform.
            conv.lin = sparse_input_linear(conv.lin)
            self.convs.append(conv)

    @property
    def reg_modules(self) -> List[Module]:
        r"""The modules whose parameters get weight decay: all of them."""
        return list(self.convs)

    @property
    def nonreg_modules(self) -> List[Module]:
        r"""The modules whose parameters get no weight decay: none."""
        return []

    def reset_parameters(self):
        super().reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def _conv(self, layer: int, x: Tensor, edge_index: Tensor,
              num_rows: int) -> Tensor:
        x = dropout(x, p=self.dropout, training=self.training)
        # Bipartite batches: sources are all columns, targets the first
        # rows. A (sources, targets) tuple would make GATConv transform the
        # targets' rows twice; one call over all rows transforms each once,
        # and rows past 'num_rows' receive no edges and are cut off.
        return self.convs[layer](x, edge_index)[:num_rows]

    def forward(self, x: Tensor, adj_t: Tensor,
                batch: Optional[SubgraphBatch] = None) -> Tensor:
        edge_index = _attention_edges(adj_t)
        num_rows = adj_t.size(0)
        for layer, history in enumerate(self.histories):
            x = F.elu(self._conv(layer, x, edge_index, num_rows))
            x = self.push_and_pull(history, x, batch)
        return self._conv(self.num_layers - 1, x, edge_index, num_rows)

    @torch.no_grad()
    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        h = self._conv(layer, x, _attention_edges(adj_t), adj_t.size(0))
        return F.elu(h) if layer < self.num_layers - 1 else h

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, hidden_heads={self.hidden_heads}, '
                f'out_heads={self.out_heads}, num_layers={self.num_layers})')
