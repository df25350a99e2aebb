import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import subgraph

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import lpmetis, permute, sort_by_cluster
from torch_autoscale.testing import (
    assert_mini_inference_exact,
    assert_one_cluster_exact,
)
from torch_autoscale.transforms import CoarseEmbedding, PageRankRefine
from torch_autoscale.utils import csr_adj_t, homophilous_sbm


def augmented(num_parts=8, dim=6):
    data = homophilous_sbm(600, seed=0)
    n = data.num_nodes
    cluster, coarse = lpmetis(data.edge_index, n, num_parts, seed=0,
                              verbose=False, return_coarse=True)
    data.cluster = cluster
    data = CoarseEmbedding(coarse, dim=dim)(data)
    data = PageRankRefine(fraction=0.05)(data)
    data.adj_t, _ = gcn_norm(csr_adj_t(data.edge_index, n))
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


def test_gas_on_the_augmented_graph_equals_full_batch():
    data, ptr = augmented()
    assert bool(data.refined_out.any())
    model = GCN(data.num_nodes, data.num_features, 16, 4, num_layers=2)
    assert_mini_inference_exact(model, data, ptr, batch_size=3)
    assert_one_cluster_exact(model, data)


def test_cluster_training_runs_on_induced_subgraphs():
    data, ptr = augmented()
    num_classes = int(data.y.max()) + 1
    model = GCN(data.num_nodes, data.num_features, 16, num_classes,
                num_layers=2)
    model.eval()
    loader = SubgraphLoader(data, ptr, batch_size=2, halo=False,
                            shuffle=True)
    row = torch.repeat_interleave(torch.arange(data.num_nodes),
                                  data.adj_t.crow_indices().diff())
    edge_index = torch.stack([data.adj_t.col_indices(), row])
    value = data.adj_t.values()
    for batch in loader:
        # No histories: the model runs full-batch on the batch's subgraph,
        # the same as on PyG's induced subgraph with the same values.
        out = model(batch.data.x, batch.data.adj_t)
        sub, w = subgraph(batch.n_id, edge_index, value, relabel_nodes=True,
                          num_nodes=data.num_nodes)
        adj = torch.sparse_coo_tensor(sub.flip(0), w, (out.size(0), ) * 2)
        want = model(data.x[batch.n_id], adj.to_sparse_csr())
        assert torch.allclose(out, want, atol=1e-5)
    # And it learns:
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        total = 0.0
        for batch in loader:
            optimizer.zero_grad()
            out = model(batch.data.x, batch.data.adj_t)
            loss = torch.nn.functional.cross_entropy(out, batch.data.y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        losses.append(total)
    assert losses[-1] < 0.5 * losses[0]
