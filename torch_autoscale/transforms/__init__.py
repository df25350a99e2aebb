r"""Graph transforms of LPS-GNN's subgraph augmentation: global information
from the coarse graph of :func:`~torch_autoscale.partition.lpmetis`
(:class:`CoarseEmbedding`) and PageRank-guided structure refinement within
every part (:class:`PageRankRefine`)."""
from .coarse_embedding import CoarseEmbedding, spectral_embedding
from .pagerank_refine import PageRankRefine, pagerank_refine, subgraph_pagerank

__all__ = [
    'CoarseEmbedding',
    'spectral_embedding',
    'PageRankRefine',
    'pagerank_refine',
    'subgraph_pagerank',
]
