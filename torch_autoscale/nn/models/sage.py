from torch.nn import Module
from torch_geometric.nn import SAGEConv

from torch_autoscale.nn.models.basic import BasicGNN


class GraphSAGE(BasicGNN):
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
        drop_input (bool, optional): Whether to apply dropout to the input
            features as well. (default: :obj:`False`)
        batch_norm (bool, optional): Whether to apply batch normalization
            after every hidden convolution. (default: :obj:`False`)
        residual (bool, optional): Whether hidden layers add their input to
            their output (when the widths agree). (default: :obj:`False`)
        linear (bool, optional): Whether to embed the input with a linear
            layer and read out with another one. (default: :obj:`False`)
        **kwargs (optional): Further arguments of :class:`ScalableGNN`, such
            as :obj:`pool_size`, :obj:`buffer_size`, :obj:`history_dtype`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          :obj:`adj_t` :math:`(|\mathcal{B}|, |\mathcal{V}|)`, optional
          :class:`~torch_autoscale.loader.SubgraphBatch`
        - **output:** :math:`(|\mathcal{B}|, F_{out})`
    """
    def init_conv(self, in_channels: int, out_channels: int,
                  layer: int) -> Module:
        return SAGEConv(in_channels, out_channels, aggr='mean')
