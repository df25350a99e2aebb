from torch import Tensor
from torch.nn import Module

from torch_autoscale.nn.conv import CachedGCNConv
from torch_autoscale.nn.models.basic import BasicGNN


class GCN(BasicGNN):
    r"""The graph convolutional network from `"Semi-supervised Classification
    with Graph Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_,
    trained with historical embeddings (GNNAutoScale).

    .. math::
        \mathbf{H}^{(\ell+1)} = \sigma\left(\hat{\mathbf{D}}^{-1/2}
        \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2} \mathbf{H}^{(\ell)}
        \mathbf{W}^{(\ell)}\right)

    The convolutions do not normalize: hand in an :obj:`adj_t` normalized on
    the *whole* graph before it is partitioned, *e.g.* with
    :func:`torch_geometric.nn.conv.gcn_conv.gcn_norm`, so that every
    mini-batch sees the full-graph degrees and GAS reproduces full-batch
    propagation.

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
    sparse_conv_input = True  # GCNConv transforms before propagating.
    expects_normalized_adj = True

    def init_conv(self, in_channels: int, out_channels: int,
                  layer: int) -> Module:
        return CachedGCNConv(in_channels, out_channels, normalize=False)

    def conv(self, layer: int, x: Tensor, adj_t: Tensor) -> Tensor:
        # GCNConv has no root weight: it takes the sources only.
        return self.convs[layer](x, adj_t)
