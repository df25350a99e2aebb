r"""Segment encoders: a backbone that maps a batch of (segment) graphs to one
embedding each."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Identity, Linear, ModuleList, PReLU
from torch_geometric.data import Batch
from torch_geometric.nn import (
    BatchNorm,
    GCNConv,
    SAGEConv,
    global_add_pool,
    global_mean_pool,
)

_CONVS = {'gcn': GCNConv, 'sage': SAGEConv}
_POOLS = {'sum': global_add_pool, 'mean': global_mean_pool}


class SegmentEncoder(torch.nn.Module):
    r"""The backbone :math:`F` of Graph Segment Training in the shape of the
    paper's (`Cao et al., NeurIPS 2023 <https://arxiv.org/abs/2305.12322>`_;
    its GraphGym configuration): one pre-message-passing linear layer and
    :obj:`num_layers` GCN or GraphSAGE layers, each followed by batch
    normalization and PReLU; the node embeddings are then scaled to unit
    length and pooled over the nodes of every graph of the batch. The
    post-message-passing layer is the prediction head :math:`F'` of
    :class:`~torch_autoscale.segment.GSTModel`.

    The unit-length node embeddings bound every segment embedding by its
    number of nodes, however the weights move, which keeps the rows of a
    segment table comparable to fresh ones.

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
        batch_norm (bool, optional): Whether every layer is followed by batch
            normalization (then its bias is dropped); a training batch of a
            single node is normalized with the running statistics.
            (default: :obj:`True`)
        normalize (bool, optional): Whether node embeddings are scaled to
            unit :math:`L_2` norm before pooling. (default: :obj:`True`)
        pool (str, optional): How node embeddings are pooled into one per
            graph: :obj:`"sum"` or :obj:`"mean"`. (default: :obj:`"sum"`)

    Shapes:
        - **input:** a batch of :math:`G` graphs with node features
          :math:`(N, F_{in})`
        - **output:** :math:`(G, F_{hid})`
    """
    def __init__(self, in_channels: int, hidden_channels: int,
                 num_layers: int = 2, conv: str = 'sage',
                 batch_norm: bool = True, normalize: bool = True,
                 pool: str = 'sum'):
        super().__init__()
        if conv not in _CONVS:
            raise ValueError(f"'conv' must be one of {sorted(_CONVS)} (got "
                             f"{conv!r})")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive integer (got "
                             f"{num_layers!r})")
        if pool not in _POOLS:
            raise ValueError(f"'pool' must be one of {sorted(_POOLS)} (got "
                             f"{pool!r})")
        self.in_channels = in_channels
        self.out_channels = hidden_channels
        self.conv = conv
        self.batch_norm = batch_norm
        self.normalize = normalize
        self.pool = pool
        bias = not batch_norm  # Batch normalization has its own shift.
        self.pre = Linear(in_channels, hidden_channels, bias=bias)
        self.convs = ModuleList(
            [_CONVS[conv](hidden_channels, hidden_channels, bias=bias)
             for _ in range(num_layers)])
        # A sampled segment may hold a single node: batch statistics of one
        # element are undefined, and PyG's BatchNorm then uses the running
        # ones instead of failing.
        self.norms = ModuleList([
            BatchNorm(hidden_channels, allow_single_element=True)
            if batch_norm else Identity() for _ in range(num_layers + 1)
        ])
        self.acts = ModuleList([PReLU() for _ in range(num_layers + 1)])

    def reset_parameters(self):
        self.pre.reset_parameters()
        for module in list(self.convs) + list(self.acts) + list(self.norms):
            if hasattr(module, 'reset_parameters'):
                module.reset_parameters()

    def forward(self, data: Batch) -> Tensor:
        if getattr(data, 'x', None) is None:
            raise ValueError("'SegmentEncoder' needs node features 'x'; add "
                             "some with a transform such as "
                             "'torch_geometric.transforms.LocalDegreeProfile'")
        x = self.acts[0](self.norms[0](self.pre(data.x)))
        for conv, norm, act in zip(self.convs, self.norms[1:], self.acts[1:]):
            x = act(norm(conv(x, data.edge_index)))
        if self.normalize:
            x = F.normalize(x, p=2.0, dim=-1)
        batch: Optional[Tensor] = getattr(data, 'batch', None)
        size = getattr(data, 'num_graphs', None) if batch is not None else 1
        return _POOLS[self.pool](x, batch, size=size)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, num_layers={len(self.convs)}, '
                f'conv={self.conv!r}, batch_norm={self.batch_norm}, '
                f'normalize={self.normalize}, pool={self.pool!r})')
