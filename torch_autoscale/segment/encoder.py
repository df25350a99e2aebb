r"""Segment encoders: a backbone that maps a batch of (segment) graphs to one
embedding each."""
from typing import Optional

import torch
from torch import Tensor
from torch.nn import Linear, ModuleList, PReLU
from torch_geometric.data import Batch
from torch_geometric.nn import GCNConv, SAGEConv, global_mean_pool

_CONVS = {'gcn': GCNConv, 'sage': SAGEConv}


class SegmentEncoder(torch.nn.Module):
    r"""The backbone :math:`F` of Graph Segment Training in the shape of the
    paper's (`Cao et al., NeurIPS 2023 <https://arxiv.org/abs/2305.12322>`_):
    one pre-message-passing linear layer, :obj:`num_layers` GCN or GraphSAGE
    layers, PReLU activations, and mean pooling over the nodes of every
    graph of the batch. The post-message-passing layer is the prediction
    head :math:`F'` of :class:`~torch_autoscale.segment.GSTModel`.

    Any module with the same call signature (a
    :class:`~torch_geometric.data.Batch` in, one row per graph out) and an
    :obj:`out_channels` attribute can replace it.

    Args:
        in_channels (int): The node feature width.
        hidden_channels (int): The width of every layer and of the output.
        num_layers (int, optional): The number of message-passing layers.
            (default: :obj:`2`)
        conv (str, optional): :obj:`"gcn"` or :obj:`"sage"`.
            (default: :obj:`"sage"`)

    Shapes:
        - **input:** a batch of :math:`G` graphs with node features
          :math:`(N, F_{in})`
        - **output:** :math:`(G, F_{hid})`
    """
    def __init__(self, in_channels: int, hidden_channels: int,
                 num_layers: int = 2, conv: str = 'sage'):
        super().__init__()
        if conv not in _CONVS:
            raise ValueError(f"'conv' must be one of {sorted(_CONVS)} (got "
                             f"{conv!r})")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive integer (got "
                             f"{num_layers!r})")
        self.in_channels = in_channels
        self.out_channels = hidden_channels
        self.conv = conv
        self.pre = Linear(in_channels, hidden_channels)
        self.convs = ModuleList(
            [_CONVS[conv](hidden_channels, hidden_channels)
             for _ in range(num_layers)])
        self.acts = ModuleList([PReLU() for _ in range(num_layers + 1)])

    def reset_parameters(self):
        self.pre.reset_parameters()
        for module in list(self.convs) + list(self.acts):
            module.reset_parameters()

    def forward(self, data: Batch) -> Tensor:
        if getattr(data, 'x', None) is None:
            raise ValueError("'SegmentEncoder' needs node features 'x'; add "
                             "some with a transform such as "
                             "'torch_geometric.transforms.LocalDegreeProfile'")
        x = self.acts[0](self.pre(data.x))
        for conv, act in zip(self.convs, self.acts[1:]):
            x = act(conv(x, data.edge_index))
        batch: Optional[Tensor] = getattr(data, 'batch', None)
        size = getattr(data, 'num_graphs', None) if batch is not None else 1
        return global_mean_pool(x, batch, size=size)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, num_layers={len(self.convs)}, '
                f'conv={self.conv!r})')
