import importlib

import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.partition import lpmetis, permute, sort_by_cluster
from torch_autoscale.transforms import CoarseEmbedding, spectral_embedding

from test.partition.test_lpmetis import planted

module = importlib.import_module('torch_autoscale.transforms.coarse_embedding')


def coarse_of(num_blocks=6, size=40, seed=0):
    edge_index, n = planted(num_blocks=num_blocks, size=size, p_in=0.2,
                            p_out=0.004, seed=seed)
    cluster, coarse = lpmetis(edge_index, n, 4, seed=seed, verbose=False,
                              max_cluster_size=6, return_coarse=True)
    return edge_index, n, cluster, coarse


def normalized_dense(coarse):
    n = coarse.num_nodes
    A = torch.zeros(n, n, dtype=torch.double)
    row, col = coarse.edge_index()
    A[row, col] = coarse.weight.double()
    A += torch.eye(n, dtype=torch.double)
    inv = A.sum(1).rsqrt()
    return inv.view(-1, 1) * A * inv.view(1, -1)


def test_spectral_embedding_holds_the_leading_eigenvectors():
    _, _, _, coarse = coarse_of()
    emb = spectral_embedding(coarse, dim=5).double()
    n = coarse.num_nodes
    assert emb.shape == (n, 5) and 5 < n
    values, vectors = torch.linalg.eigh(normalized_dense(coarse))
    want = vectors[:, -5:].flip(1) * n**0.5
    # The same vectors up to sign (the eigenvalues are distinct here):
    assert bool((values[-6:].diff() > 1e-6).all())
    sign = (emb * want).sum(0).sign()
    assert torch.allclose(emb, want * sign, atol=1e-4)
    # Unit root mean square per column, largest entry positive:
    assert torch.allclose(emb.pow(2).mean(0), torch.ones(5).double(),
                          atol=1e-4)
    pivot = emb.abs().argmax(0)
    assert bool((emb[pivot, torch.arange(5)] > 0).all())


def test_randomized_decomposition_agrees_with_the_exact_one(monkeypatch):
    _, _, _, coarse = coarse_of(num_blocks=8, size=50, seed=1)
    # 8 communities: 8 eigenvalues near 1, then a gap.
    exact = spectral_embedding(coarse, dim=8).double()
    monkeypatch.setattr(module, 'DENSE_NODES', 10)
    approx = spectral_embedding(coarse, dim=8, seed=3)
    assert torch.equal(approx, spectral_embedding(coarse, dim=8, seed=3))
    approx = approx.double()
    # The same subspace (vectors within it may differ where eigenvalues
    # are close): the projections onto both agree.
    n = coarse.num_nodes
    p_exact = exact @ exact.t() / n
    p_approx = approx @ approx.t() / n
    assert float((p_exact - p_approx).norm()) < 1e-2  # Of 8**0.5.
    # The leading vector (the degrees' square roots) is well separated:
    assert torch.allclose(approx[:, 0], exact[:, 0], atol=1e-3)


def test_more_dimensions_than_coarse_nodes_are_zero():
    _, _, _, coarse = coarse_of(num_blocks=2, size=10)
    emb = spectral_embedding(coarse, dim=coarse.num_nodes + 3)
    assert emb[:, coarse.num_nodes:].abs().sum() == 0
    assert emb[:, :coarse.num_nodes].abs().sum() > 0


def test_embedding_follows_its_nodes_through_permutation():
    edge_index, n, cluster, coarse = coarse_of()
    x = torch.randn(n, 3)
    data = Data(x=x, edge_index=edge_index, y=torch.arange(n))
    transform = CoarseEmbedding(coarse, dim=8)
    emb = spectral_embedding(coarse, dim=8)
    out = transform(data.clone())
    assert torch.equal(out.x, torch.cat([x, emb[coarse.node]], 1))
    perm, ptr = sort_by_cluster(cluster, 4)
    moved = permute(out, perm)
    # Node i of the permuted graph is old node perm[i] (its label says so)
    # and carries the embedding of that node's coarse node:
    assert torch.equal(moved.y, perm)
    assert torch.equal(moved.x[:, 3:], emb[coarse.node[moved.y]])
    # Embedding after permuting, with the permuted coarse graph, is the
    # same:
    later = CoarseEmbedding(coarse.permute(perm), dim=8)(
        permute(data.clone(), perm))
    assert torch.equal(later.x, moved.x)
    # Coarse nodes have distinct embeddings, so the check above tells them
    # apart:
    assert torch.unique(emb, dim=0).size(0) == coarse.num_nodes


def test_attribute_and_errors():
    edge_index, n, cluster, coarse = coarse_of()
    data = Data(x=torch.randn(n, 3), edge_index=edge_index)
    out = CoarseEmbedding(coarse, dim=4, attr_name='global_x')(data.clone())
    assert out.x.shape == (n, 3) and out.global_x.shape == (n, 4)
    assert 'CoarseEmbedding(dim=4' in repr(CoarseEmbedding(coarse, dim=4))
    with pytest.raises(ValueError, match='nodes'):
        CoarseEmbedding(coarse)(Data(x=torch.randn(n + 1, 3)))
    with pytest.raises(ValueError, match='sparse'):
        CoarseEmbedding(coarse)(Data(x=torch.randn(n, 3).to_sparse_csr()))
    with pytest.raises(ValueError, match="'dim'"):
        spectral_embedding(coarse, dim=0)
    with pytest.raises(ValueError, match="'coarse'"):
        spectral_embedding(edge_index)
