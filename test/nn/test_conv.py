import pytest
import torch
from torch_geometric.nn import GCN2Conv, GCNConv

from torch_autoscale.nn.conv import CachedGCN2Conv, CachedGCNConv
from torch_autoscale.utils import csr_adj_t
from torch_autoscale.utils.sparse import sparse_csr


def bipartite_adj(num_rows=30, num_cols=50, num_edges=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    adj = csr_adj_t(torch.randint(num_cols, (2, num_edges), generator=gen),
                    num_cols, torch.rand(num_edges, generator=gen))
    # The first 'num_rows' rows: a mini-batch adjacency [B, n_id].
    crow = adj.crow_indices()[:num_rows + 1]
    end = int(crow[-1])
    return sparse_csr(crow, adj.col_indices()[:end], adj.values()[:end],
                      (num_rows, num_cols))


@pytest.mark.parametrize('square', [True, False])
def test_cached_convs_match_pyg(square):
    adj = csr_adj_t(torch.randint(50, (2, 300)), 50, torch.rand(300)) \
        if square else bipartite_adj()
    x = torch.randn(50, 8, requires_grad=True)
    x_0 = torch.randn(adj.size(0), 8)
    pairs = [
        (CachedGCNConv(8, 4, normalize=False), GCNConv(8, 4,
                                                      normalize=False),
         lambda conv: conv(x, adj)),
        (CachedGCN2Conv(8, alpha=0.1, theta=0.5, layer=2, normalize=False),
         GCN2Conv(8, alpha=0.1, theta=0.5, layer=2, normalize=False),
         lambda conv: conv(x, x_0, adj)),
    ]
    for ours, pyg, call in pairs:
        pyg.load_state_dict(ours.state_dict())
        out, ref = call(ours), call(pyg)
        assert torch.allclose(out, ref, atol=1e-6)
        grad = torch.randn_like(out)
        gx, = torch.autograd.grad(out, x, grad)
        gr, = torch.autograd.grad(ref, x, grad)
        assert torch.allclose(gx, gr, atol=1e-5)
