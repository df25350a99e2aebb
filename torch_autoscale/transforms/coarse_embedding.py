r"""The coarse graph's unsupervised embedding, appended to node features.

LPS-GNN concatenates every node's features with an embedding of the coarse
node (the cluster of merged nodes) it belongs to, so that a subgraph trained
on its own still sees where it lies in the whole graph. The coarse graph is
the one :func:`~torch_autoscale.partition.lpmetis` handed to METIS, kept
with :obj:`return_coarse=True`.

The embedding is spectral: the leading eigenvectors of the coarse graph's
normalized adjacency. We chose it over PyG's
:class:`~torch_geometric.nn.models.Node2Vec` because Node2Vec's random walks
need :obj:`torch-cluster` or :obj:`pyg-lib`, which this library does not
require (neither installs from PyPI wheels everywhere), and because it needs
no training: the coarse graph is small (METIS splits it in memory), and a
dense or randomized eigendecomposition of it takes seconds and gives the
same result on every run. Both embed the same proximity (random-walk
co-occurrence factorizes a power series of the normalized adjacency, whose
leading eigenvectors the spectral embedding keeps; see ProNE).
"""
import logging
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.transforms import BaseTransform

from torch_autoscale.partition.lpmetis import CoarseGraph
from torch_autoscale.utils.checks import check_int

log = logging.getLogger(__name__)

DENSE_NODES: int = 4096
r"""Coarse graphs of at most this many nodes are decomposed exactly
(:func:`torch.linalg.eigh`); larger ones by a randomized low-rank method
(:func:`torch.svd_lowrank`)."""


def _normalized(coarse: CoarseGraph) -> Tensor:
    r"""The sparse matrix :math:`\frac{1}{2}(I + D^{-1/2} (A + I)
    D^{-1/2})` of the coarse graph, in :obj:`float64`: symmetric with
    eigenvalues in :math:`[0, 1]`, so its leading singular vectors are its
    leading eigenvectors (those of the smoothest signals)."""
    n = coarse.num_nodes
    # PyG's normalization (self-loops of weight one, edge weights kept):
    edge_index, value = gcn_norm(coarse.edge_index(), coarse.weight.double(),
                                 n, add_self_loops=True)
    value = 0.5 * value
    loops = edge_index[0] == edge_index[1]
    value[loops] += 0.5
    # Indices built here are in range: no invariant checks (and no
    # warning that they are off).
    return torch.sparse_coo_tensor(edge_index, value, (n, n),
                                   check_invariants=False).coalesce()


def spectral_embedding(coarse: CoarseGraph, dim: int = 16,
                       seed: int = 0) -> Tensor:
    r"""The spectral embedding of a coarse graph: the :obj:`dim` leading
    eigenvectors of its normalized adjacency with self-loops
    (:math:`D^{-1/2} (A + I) D^{-1/2}`, edge weights included), one row per
    coarse node, scaled to unit root mean square per column. Each vector's
    sign is fixed so that its largest entry (by magnitude, the first such)
    is positive; columns past the number of coarse nodes are zero.

    Args:
        coarse (CoarseGraph): The coarse graph, from
            :func:`~torch_autoscale.partition.lpmetis` with
            :obj:`return_coarse=True`.
        dim (int, optional): The embedding size. (default: :obj:`16`)
        seed (int, optional): The seed of the randomized decomposition of
            coarse graphs larger than :obj:`DENSE_NODES` nodes (smaller
            ones are decomposed exactly). (default: :obj:`0`)

    Returns:
        torch.Tensor: A :obj:`float32` tensor of shape
        :obj:`[num_coarse_nodes, dim]`.
    """
    dim = check_int(dim, 'dim', 1)
    if not isinstance(coarse, CoarseGraph):
        raise ValueError(f"'coarse' must be the CoarseGraph of "
                         f"lpmetis(..., return_coarse=True) (got "
                         f"{type(coarse).__name__})")
    n = coarse.num_nodes
    k = min(dim, n)
    out = torch.zeros(n, dim, dtype=torch.double)
    if k == 0:
        return out.float()
    matrix = _normalized(coarse).cpu()
    if n <= DENSE_NODES:
        _, vectors = torch.linalg.eigh(matrix.to_dense())
        vectors = vectors[:, -k:].flip(1)  # Decreasing eigenvalues.
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vectors, _, _ = torch.svd_lowrank(matrix,
                                              q=min(2 * k + 10, n),
                                              niter=10)
        vectors = vectors[:, :k]
    # One sign per vector, so that runs and engines agree:
    pivot = vectors.abs().argmax(dim=0)
    sign = vectors[pivot, torch.arange(k)].sign()
    sign[sign == 0] = 1
    out[:, :k] = vectors * sign * n**0.5
    return out.float()


class CoarseEmbedding(BaseTransform):
    r"""Appends to every node's features the spectral embedding
    (:func:`spectral_embedding`) of its coarse node: the global
    information of LPS-GNN's subgraph augmentation (`"LPS-GNN: Deploying
    Graph Neural Networks on Graphs with 100-Billion Edges"
    <https://arxiv.org/abs/2507.14570>`_).

    The embedding is computed once, when the transform is built. The
    transform takes the graph :obj:`coarse` was made from, with its nodes
    in the same order: apply it before permuting the graph (the features
    then move with their nodes), or pass :obj:`coarse.permute(perm)`.

    .. code-block:: python

        cluster, coarse = lpmetis(data.edge_index, data.num_nodes, 40,
                                  seed=0, return_coarse=True)
        data = CoarseEmbedding(coarse, dim=16)(data)
        perm, ptr = sort_by_cluster(cluster, 40)
        data = permute(data, perm)

    Args:
        coarse (CoarseGraph): The coarse graph, from
            :func:`~torch_autoscale.partition.lpmetis` (or
            :func:`~torch_autoscale.store.lpmetis_store`,
            :func:`~torch_autoscale.partition.lpmetis_spark`) with
            :obj:`return_coarse=True`.
        dim (int, optional): The embedding size. (default: :obj:`16`)
        seed (int, optional): See :func:`spectral_embedding`.
            (default: :obj:`0`)
        attr_name (str, optional): If given, the embedding goes to
            :obj:`data[attr_name]` instead of being appended to
            :obj:`data.x`. (default: :obj:`None`)
    """
    def __init__(self, coarse: CoarseGraph, dim: int = 16, seed: int = 0,
                 attr_name: Optional[str] = None):
        self.embedding = spectral_embedding(coarse, dim, seed)
        self.node = coarse.node.cpu()
        self.attr_name = attr_name

    def node_embedding(self) -> Tensor:
        r"""The embedding of every original node, of shape
        :obj:`[num_nodes, dim]`."""
        return self.embedding[self.node]

    def forward(self, data: Data) -> Data:
        if data.num_nodes != self.node.numel():
            raise ValueError(
                f"the graph has {data.num_nodes} nodes but the coarse graph "
                f"was made from one with {self.node.numel()}; build the "
                f"transform from the same graph's lpmetis(..., "
                f"return_coarse=True)")
        emb = self.node_embedding()
        x = data.get('x')
        if self.attr_name is not None or x is None:
            data[self.attr_name or 'x'] = emb.to(
                x.device if x is not None else emb.device)
            return data
        if x.layout != torch.strided:
            raise ValueError(
                "'data.x' is sparse; append the coarse embedding to dense "
                "features first (before sparsify_features), or pass "
                "'attr_name' to keep it apart")
        if x.dim() != 2:
            raise ValueError(f"'data.x' must be a [num_nodes, features] "
                             f"matrix (got shape {list(x.shape)})")
        data.x = torch.cat([x, emb.to(x.device, x.dtype)], dim=-1)
        return data

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(dim={self.embedding.size(1)}, '
                f'coarse_nodes={self.embedding.size(0)})')
