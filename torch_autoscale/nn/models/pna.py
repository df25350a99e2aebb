from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Module
from torch_geometric.nn import PNAConv
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import degree

from torch_autoscale.nn.functional import check_dropout
from torch_autoscale.nn.models.basic import BasicGNN

AGGREGATORS = ('sum', 'mean', 'min', 'max', 'var', 'std')
SCALERS = ('identity', 'amplification', 'attenuation', 'linear',
           'inverse_linear')


def degree_histogram(adj: Tensor, num_nodes: Optional[int] = None) -> Tensor:
    r"""The in-degree histogram of a graph: entry :math:`d` counts the nodes
    with :math:`d` incoming edges. It is the :obj:`deg` argument of
    :class:`PNA`, :class:`~torch_autoscale.nn.models.pna_jk.PNA_JK` and
    :class:`torch_geometric.nn.conv.PNAConv`, whose degree scalers divide by
    its average (logarithmic) degree.

    Compute it on the *whole* graph the model sees (with the same self-loops
    and duplicate edges), not on a mini-batch.

    Args:
        adj (torch.Tensor): Either the square :obj:`torch.sparse_csr`
            adjacency :obj:`adj_t` (rows are targets) or an :obj:`edge_index`
            of (source, target) pairs.
        num_nodes (int, optional): The number of nodes; needed with an
            :obj:`edge_index` whose last nodes are isolated. (default:
            :obj:`None`, inferred)

    Returns:
        A :obj:`torch.long` tensor of length :obj:`max_degree + 1`.
    """
    if not isinstance(adj, Tensor):
        raise ValueError(f"'adj' must be a torch.sparse_csr 'adj_t' or an "
                         f"'edge_index' tensor (got {type(adj).__name__})")
    if adj.layout == torch.sparse_csr:
        if adj.size(0) != adj.size(1):
            raise ValueError(
                f"'adj' has shape {tuple(adj.size())}; pass the square "
                f"adjacency of the whole graph, not a bipartite mini-batch")
        if num_nodes is not None and num_nodes != adj.size(0):
            raise ValueError(f"'num_nodes' is {num_nodes} but 'adj' has "
                             f"{adj.size(0)} rows")
        crow = adj.crow_indices()
        deg = (crow[1:] - crow[:-1]).long()
    elif adj.layout == torch.strided and adj.dim() == 2 and \
            adj.size(0) == 2 and not adj.is_floating_point():
        deg = degree(adj[1], num_nodes, dtype=torch.long)
    else:
        raise ValueError(f"'adj' must be a torch.sparse_csr 'adj_t' or an "
                         f"integer 'edge_index' of shape [2, num_edges] (got "
                         f"layout {adj.layout} and shape {tuple(adj.size())})")
    return torch.bincount(deg.cpu())


class BipartitePNAConv(PNAConv):
    r""":class:`torch_geometric.nn.conv.PNAConv` that also accepts a
    bipartite input :obj:`(x_src, x_dst)`, the form of a GAS mini-batch
    whose :obj:`adj_t` has one row per in-batch node.

    PyG's :class:`~torch_geometric.nn.conv.PNAConv` treats :obj:`x` as both
    sources and targets, so it can only run a mini-batch by computing (and
    discarding) outputs for every halo node. Here messages, aggregation and
    the post-aggregation networks run for the :obj:`x_dst` rows only, with
    the same parameters and the same result. The degree scalers use the
    number of entries in every row of :obj:`adj_t`, which in a GAS batch is
    the node's full in-degree; edge values are ignored.

    Args:
        *args, **kwargs: The arguments of
            :class:`~torch_geometric.nn.conv.PNAConv`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{in}), (|\mathcal{V_t}|, F_{in}))`,
          :obj:`adj_t` :math:`(|\mathcal{V_t}|, |\mathcal{V_s}|)` or an
          :obj:`edge_index` :math:`(2, |\mathcal{E}|)`
        - **output:** :math:`(|\mathcal{V_t}|, F_{out})`
    """
    def forward(self, x: Union[Tensor, Tuple[Tensor, Tensor]],
                edge_index: Adj, edge_attr: OptTensor = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        if self.divide_input:
            x_src = x_src.view(-1, self.towers, self.F_in)
            x_dst = x_dst.view(-1, self.towers, self.F_in)
        else:
            x_src = x_src.view(-1, 1, self.F_in).repeat(1, self.towers, 1)
            x_dst = x_dst.view(-1, 1, self.F_in).repeat(1, self.towers, 1)
        out = self.propagate(edge_index, x=(x_src, x_dst),
                             edge_attr=edge_attr)
        out = torch.cat([x_dst, out], dim=-1)
        out = torch.cat([nn(out[:, i]) for i, nn in enumerate(self.post_nns)],
                        dim=1)
        return self.lin(out)


def check_pna_args(cls: str, aggregators: Union[str, Sequence[str]],
                   scalers: Union[str, Sequence[str]], deg: Tensor,
                   dropout: float) -> Tuple[List[str], List[str], Tensor]:
    r"""Validates the arguments that :class:`PNA` and
    :class:`~torch_autoscale.nn.models.PNA_JK` share, raising a
    :class:`ValueError` that names :obj:`cls`, the argument and the fix.

    Args:
        cls (str): The name of the model class, for the error messages.
        aggregators (str or [str]): The aggregators, drawn from
            :obj:`AGGREGATORS`.
        scalers (str or [str]): The degree scalers, drawn from
            :obj:`SCALERS`.
        deg (torch.Tensor): The in-degree histogram of the graph (see
            :func:`degree_histogram`).
        dropout (float): The dropout probability.

    Returns:
        The aggregators and scalers as lists, and :obj:`deg`.
    """
    aggregators = [aggregators] if isinstance(aggregators, str) else \
        list(aggregators)
    scalers = [scalers] if isinstance(scalers, str) else list(scalers)
    if len(aggregators) == 0 or any(a not in AGGREGATORS
                                    for a in aggregators):
        raise ValueError(f"{cls}: 'aggregators' must be a non-empty list "
                         f"drawn from {list(AGGREGATORS)} (got "
                         f"{aggregators})")
    if len(scalers) == 0 or any(s not in SCALERS for s in scalers):
        raise ValueError(f"{cls}: 'scalers' must be a non-empty list drawn "
                         f"from {list(SCALERS)} (got {scalers})")
    valid = isinstance(deg, Tensor) and deg.dim() == 1
    if valid:
        valid = not bool((deg < 0).any()) and float(deg[1:].sum()) > 0 and \
            bool((deg == deg.round()).all())
    if not valid:
        raise ValueError(
            f"{cls}: 'deg' must be the in-degree histogram of the graph, a "
            f"one-dimensional tensor of non-negative node counts with at "
            f"least one node of positive degree; compute it with "
            f"torch_autoscale.nn.models.pna.degree_histogram(adj_t)")
    check_dropout(dropout, cls)
    return aggregators, scalers, deg


class PNA(BasicGNN):
    r"""The principal neighbourhood aggregation network from `"Principal
    Neighbourhood Aggregation for Graph Nets"
    <https://arxiv.org/abs/2004.05718>`_, trained with historical embeddings
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    Every layer is a :class:`torch_geometric.nn.conv.PNAConv` (one tower),
    which combines several aggregators with degree scalers:

    .. math::
        \mathbf{h}_i^{(\ell+1)} = \gamma\left(\mathbf{h}_i^{(\ell)},
        \underset{j \in \mathcal{N}(i)}{\bigoplus}
        \phi\left(\mathbf{h}_i^{(\ell)}, \mathbf{h}_j^{(\ell)}\right)\right),
        \qquad \bigoplus = \begin{bmatrix} 1 \\ S(d_i, \alpha=1) \\
        S(d_i, \alpha=-1) \end{bmatrix} \otimes \begin{bmatrix}
        \mu \\ \sigma \\ \max \\ \min \end{bmatrix}

    followed, in every hidden layer, by optional batch normalization, an
    optional residual connection and a ReLU. The scalers
    :math:`S(d_i, \alpha) = (\log(d_i + 1) / \delta)^\alpha` need the
    in-degree :math:`d_i` of every node: a GAS mini-batch holds all edges
    into its in-batch nodes, so it sees full-graph degrees, and
    :math:`\delta`, the average of :math:`\log(d + 1)` over the training
    graph, comes from :obj:`deg`. The values of :obj:`adj_t` are ignored.

    Args:
        num_nodes (int): The number of nodes of the graph.
        in_channels (int): The input feature width.
        hidden_channels (int): The hidden width.
        out_channels (int): The output width.
        num_layers (int): The number of convolutions.
        aggregators (list of str): The aggregators, from :obj:`"sum"`,
            :obj:`"mean"`, :obj:`"min"`, :obj:`"max"`, :obj:`"var"` and
            :obj:`"std"`.
        scalers (list of str): The degree scalers, from :obj:`"identity"`,
            :obj:`"amplification"`, :obj:`"attenuation"`, :obj:`"linear"`
            and :obj:`"inverse_linear"`.
        deg (torch.Tensor): The in-degree histogram of the graph, see
            :func:`degree_histogram`.
        dropout (float, optional): Dropout probability before every
            convolution but the first. (default: :obj:`0.0`)
        drop_input (bool, optional): Whether to apply dropout to the input
            features as well. (default: :obj:`False`)
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
    degree_histogram = staticmethod(degree_histogram)

    def __init__(self, num_nodes: int, in_channels: int, hidden_channels: int,
                 out_channels: int, num_layers: int,
                 aggregators: Sequence[str], scalers: Sequence[str],
                 deg: Tensor, dropout: float = 0.0, drop_input: bool = False,
                 batch_norm: bool = False, residual: bool = False, **kwargs):
        # Checked and kept before the layers are built by `init_conv`.
        self.aggregators, self.scalers, self.deg = check_pna_args(
            self.__class__.__name__, aggregators, scalers, deg, dropout)
        super().__init__(num_nodes, in_channels, hidden_channels,
                         out_channels, num_layers, dropout=dropout,
                         drop_input=drop_input, batch_norm=batch_norm,
                         residual=residual, **kwargs)

    def init_conv(self, in_channels: int, out_channels: int,
                  layer: int) -> Module:
        return BipartitePNAConv(in_channels, out_channels, self.aggregators,
                                self.scalers, self.deg)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers}, '
                f'aggregators={self.aggregators}, scalers={self.scalers})')
