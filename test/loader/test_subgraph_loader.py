import pickle
import warnings

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import subgraph, to_undirected

from torch_autoscale.loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)
from torch_autoscale.utils import csr_adj_t


def random_graph(num_nodes=60, num_edges=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(num_nodes, (2, num_edges), generator=gen)
    edge_index = to_undirected(edge_index, num_nodes=num_nodes)
    data = Data(x=torch.randn(num_nodes, 5, generator=gen),
                y=torch.arange(num_nodes), edge_index=edge_index)
    data.edge_attr = torch.arange(edge_index.size(1)).float().view(-1, 1)
    data.train_mask = torch.rand(num_nodes, generator=gen) < 0.5
    return data


def dense(data):
    out = torch.zeros(data.num_nodes, data.num_nodes)
    out[data.edge_index[1], data.edge_index[0]] = 1.0  # rows are targets
    return out


def check_batch(batch: SubgraphBatch, data, ptr, clusters, bipartite):
    A = dense(data)
    offset, count = ptr[clusters], ptr[clusters + 1] - ptr[clusters]
    assert torch.equal(batch.offset, offset)
    assert torch.equal(batch.count, count)
    runs = torch.cat([torch.arange(o, o + c) for o, c in zip(offset, count)])
    bs = batch.batch_size
    assert bs == int(count.sum())
    assert torch.equal(batch.n_id[:bs], runs)
    # The halo is exactly the out-of-batch neighbours, each once.
    halo = batch.n_id[bs:]
    expected = (A[runs].sum(0) > 0).nonzero().view(-1)
    expected = expected[~torch.isin(expected, runs)]
    assert torch.equal(halo, expected)  # Ascending, each once.
    # The adjacency is the global one restricted to rows and n_id columns.
    adj = batch.data.adj_t.to_dense()
    rows = bs if bipartite else batch.n_id.numel()
    assert adj.size() == (rows, batch.n_id.numel())
    assert torch.equal(adj[:bs], A[runs][:, batch.n_id])
    if not bipartite:
        assert adj[bs:].abs().sum() == 0
    # Node and edge attributes are sliced and stay attached.
    assert torch.equal(batch.data.x, data.x[batch.n_id])
    assert torch.equal(batch.data.y, batch.n_id)
    assert torch.equal(batch.data.train_mask, data.train_mask[batch.n_id])
    crow = batch.data.adj_t.crow_indices()
    col = batch.data.adj_t.col_indices()
    row = torch.repeat_interleave(torch.arange(crow.numel() - 1),
                                  crow[1:] - crow[:-1])
    attr = {(int(s), int(d)): float(a) for (s, d), a in zip(
        data.edge_index.t(), data.edge_attr.view(-1))}
    for r, c, a in zip(row.tolist(), col.tolist(),
                       batch.data.edge_attr.view(-1).tolist()):
        src, dst = int(batch.n_id[c]), int(batch.n_id[r])
        assert attr[(src, dst)] == a


@pytest.mark.parametrize('bipartite', [True, False])
@pytest.mark.parametrize('batch_size', [1, 2, 3])
def test_subgraph_loader(bipartite, batch_size, backend):
    data = random_graph()
    ptr = torch.tensor([0, 10, 25, 25, 40, 60])  # cluster 2 is empty
    loader = SubgraphLoader(data, ptr, batch_size=batch_size,
                            bipartite=bipartite)
    assert loader.clusters == [0, 1, 3, 4]
    seen = []
    for i, batch in enumerate(loader):
        clusters = torch.tensor(loader.clusters[i * batch_size:(i + 1) *
                                                batch_size])
        check_batch(batch, data, ptr, clusters, bipartite)
        seen.append(batch.n_id[:batch.batch_size])
    assert torch.equal(torch.cat(seen).sort()[0], torch.arange(60))


@pytest.mark.parametrize('precompute', [True, False])
def test_batches_without_halo_are_induced_subgraphs(precompute, backend):
    data = random_graph()
    ptr = torch.tensor([0, 10, 25, 25, 40, 60])
    loader = SubgraphLoader(data, ptr, batch_size=2, halo=False,
                            precompute=precompute)
    attr = {(int(s), int(d)): float(a) for (s, d), a in zip(
        data.edge_index.t(), data.edge_attr.view(-1))}
    for i, batch in enumerate(loader):
        clusters = torch.tensor(loader.clusters[2 * i:2 * i + 2])
        runs = torch.cat([torch.arange(int(ptr[c]), int(ptr[c + 1]))
                          for c in clusters])
        assert batch.batch_size == runs.numel()
        assert torch.equal(batch.n_id, runs)  # No halo.
        # PyG's induced subgraph, as a dense matrix (rows are targets):
        sub, attr_sub = subgraph(runs, data.edge_index, data.edge_attr,
                                 relabel_nodes=True,
                                 num_nodes=data.num_nodes)
        want = torch.zeros(runs.numel(), runs.numel())
        want[sub[1], sub[0]] = 1.0
        adj = batch.data.adj_t
        assert adj.size() == (runs.numel(), runs.numel())
        assert torch.equal(adj.to_dense(), want)
        assert batch.data.edge_attr.size(0) == attr_sub.size(0)
        crow, col = adj.crow_indices(), adj.col_indices()
        row = torch.repeat_interleave(torch.arange(crow.numel() - 1),
                                      crow.diff())
        for r, c, a in zip(row.tolist(), col.tolist(),
                           batch.data.edge_attr.view(-1).tolist()):
            assert attr[(int(runs[c]), int(runs[r]))] == a
        assert torch.equal(batch.data.x, data.x[runs])
    with pytest.raises(ValueError, match="'halo'"):
        SubgraphLoader(data, ptr, halo=0)


def test_shuffle_covers_every_cluster_once():
    data = random_graph()
    ptr = torch.tensor([0, 10, 20, 30, 40, 50, 60])
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=True)
    for _ in range(3):
        nodes = torch.cat([b.n_id[:b.batch_size] for b in loader])
        assert torch.equal(nodes.sort()[0], torch.arange(60))


@pytest.mark.parametrize('shuffle', [False, True])
def test_contiguous_batches_are_fixed_runs(shuffle):
    data = random_graph()
    ptr = torch.tensor([0, 10, 20, 20, 30, 40, 50, 60])  # 2 is empty
    loader = SubgraphLoader(data, ptr, batch_size=2, shuffle=shuffle,
                            contiguous=True, num_workers=1)
    assert loader.batches is None  # Built when needed.
    runs = [[0, 1], [3, 4], [5, 6]]
    by_offset = {0: 0, 10: 1, 20: 3, 30: 4, 40: 5, 50: 6}
    for _ in range(2):
        seen = []
        for batch in loader:
            clusters = torch.tensor([by_offset[int(o)]
                                     for o in batch.offset])
            check_batch(batch, data, ptr, clusters, True)
            seen.append(clusters.tolist())
        assert sorted(seen) == runs
        if not shuffle:
            assert seen == runs
    with pytest.raises(ValueError, match="'contiguous' must be True"):
        SubgraphLoader(data, ptr, contiguous='yes')


def test_batches_with_some_node_attributes():
    data = random_graph()
    ptr = torch.tensor([0, 30, 60])
    collater = SubgraphLoader(data, ptr).collater
    full = collater([0])
    bare = collater([0], node_attrs=['x'])
    assert 'x' in bare.data and 'y' not in bare.data
    assert torch.equal(bare.data.x, full.data.x)
    assert torch.equal(bare.n_id, full.n_id)
    with pytest.raises(ValueError, match=r"names \['feat'\]"):
        collater([0], node_attrs=['feat'])


def test_adj_t_input_carries_values():
    data = random_graph()
    value = torch.rand(data.edge_index.size(1))
    adj_t = csr_adj_t(data.edge_index, data.num_nodes, value)
    data_csr = Data(x=data.x, adj_t=adj_t)
    ptr = torch.tensor([0, 30, 60])
    for batch in SubgraphLoader(data_csr, ptr, batch_size=1):
        expected = adj_t.to_dense()[batch.n_id[:batch.batch_size]]
        assert torch.equal(batch.data.adj_t.to_dense(),
                           expected[:, batch.n_id])


def test_sparse_node_features():
    data = random_graph()
    data.x = data.x * (data.x > 0.5)
    sparse = data.clone()
    sparse.x = data.x.to_sparse_csr()
    ptr = torch.tensor([0, 20, 40, 60])
    for batch in SubgraphLoader(sparse, ptr, batch_size=2, shuffle=True):
        assert batch.data.x.layout == torch.sparse_csr
        assert torch.equal(batch.data.x.to_dense(), data.x[batch.n_id])


def test_eval_loader_fixed_order():
    data = random_graph()
    ptr = torch.tensor([0, 10, 20, 30, 40, 50, 60])
    loader = EvalSubgraphLoader(data, ptr, batch_size=4)
    batches = list(loader)
    assert [b.batch_size for b in batches] == [40, 20]
    assert torch.equal(batches[0].n_id[:40], torch.arange(40))
    assert torch.equal(batches[1].offset, torch.tensor([40, 50]))


def test_workers_and_pickle():
    data = random_graph()
    ptr = torch.tensor([0, 20, 40, 60])
    expected = list(SubgraphLoader(data, ptr, batch_size=2))
    loader = SubgraphLoader(data, ptr, batch_size=2, num_workers=2)
    out = list(loader)
    assert len(out) == len(expected) == 2
    for a, b in zip(out, expected):
        assert torch.equal(a.n_id, b.n_id)
        assert torch.equal(a.data.adj_t.to_dense(), b.data.adj_t.to_dense())
    collater = pickle.loads(pickle.dumps(loader.collater))
    assert torch.equal(collater([1]).n_id, loader.collater([1]).n_id)


def test_batch_to_device():
    data = random_graph()
    batch = next(iter(SubgraphLoader(data, torch.tensor([0, 60]))))
    moved = batch.to('meta')
    assert moved.data.x.device.type == 'meta'
    assert moved.n_id.device.type == 'cpu'


def test_errors():
    data = random_graph()
    with pytest.raises(ValueError, match="'ptr' must start at 0"):
        SubgraphLoader(data, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="non-decreasing"):
        SubgraphLoader(data, torch.tensor([0, 30, 20, 60]))
    with pytest.raises(ValueError, match="'ptr' must be"):
        SubgraphLoader(data, torch.tensor([60]))
    with pytest.raises(ValueError, match="'batch_size'"):
        SubgraphLoader(data, torch.tensor([0, 60]), batch_size=0)
    with pytest.raises(ValueError, match='empty graph'):
        SubgraphLoader(Data(x=torch.empty(0, 3),
                            edge_index=torch.empty(2, 0, dtype=torch.long)),
                       torch.tensor([0, 0]))
    dense_adj = Data(x=data.x, adj_t=dense(data))
    with pytest.raises(ValueError, match='torch.sparse_csr'):
        SubgraphLoader(dense_adj, torch.tensor([0, 60]))


def test_required_buffer_size():
    data = random_graph()
    ptr = torch.tensor([0, 10, 20, 30, 40, 50, 60])
    eval_loader = EvalSubgraphLoader(data, ptr, batch_size=2)
    assert eval_loader.required_buffer_size() == max(
        b.n_id.numel() for b in eval_loader)
    single = SubgraphLoader(data, ptr, batch_size=1)
    assert single.required_buffer_size() == max(
        b.n_id.numel() - b.batch_size for b in single)
    loader = SubgraphLoader(data, ptr, batch_size=3, shuffle=True)
    bound = loader.required_buffer_size()
    for _ in range(5):
        for batch in loader:
            assert batch.n_id.numel() - batch.batch_size <= bound


def test_unpermuted_graph_warns():
    from torch_autoscale.testing import clustered_graph
    data, ptr = clustered_graph(400, 8, num_classes=4, avg_degree=6)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        SubgraphLoader(data, ptr, batch_size=2)  # Permuted: no warning.
    perm = torch.randperm(data.num_nodes)
    from torch_autoscale.partition import permute
    with pytest.warns(UserWarning, match='looks unpermuted.*sort_by_cluster'):
        SubgraphLoader(permute(data, perm), ptr, batch_size=2)


def test_loader_refuses_what_it_would_drop():
    from torch_autoscale.testing import clustered_graph
    data, ptr = clustered_graph(100, 4, num_classes=2, avg_degree=4)
    with pytest.raises(ValueError, match="cannot take 'collate_fn'"):
        SubgraphLoader(data, ptr, collate_fn=lambda b: b)
    with pytest.raises(ValueError, match="leave 'shuffle' out"):
        EvalSubgraphLoader(data, ptr, shuffle=True)


def test_attributes_the_loader_cannot_slice_are_named():
    from torch_autoscale.errors import NonFiniteError
    from torch_autoscale.testing import clustered_graph
    data, ptr = clustered_graph(200, 4, num_classes=2, avg_degree=4)
    data.num_nodes = 200
    short = data.clone()
    short.x = short.x[:150]
    with pytest.raises(ValueError, match="'data.x' has 150 rows.*200 nodes"):
        SubgraphLoader(short, ptr)
    extra = data.clone()
    extra.class_weight = torch.ones(3)  # Graph-level: left out, with a word.
    with pytest.warns(UserWarning, match="'data.class_weight' has 3 rows"):
        SubgraphLoader(extra, ptr)

    # Non-finite edge values name the target nodes of their edges.
    crow = data.adj_t.crow_indices()
    target = int((crow <= 7).sum()) - 1
    value = data.adj_t.values().clone()
    value[7] = float('nan')
    bad = data.clone()
    bad.adj_t = torch.sparse_csr_tensor(crow, data.adj_t.col_indices(),
                                        value, data.adj_t.size())
    with pytest.raises(NonFiniteError, match='edge weights') as info:
        SubgraphLoader(bad, ptr)
    assert info.value.rows == [target]
    bad = data.clone()
    bad.edge_attr = torch.ones(data.adj_t.values().numel(), 2)
    bad.edge_attr[7, 1] = float('inf')
    del bad.adj_t
    bad.edge_index = torch.stack([
        data.adj_t.col_indices(),
        torch.repeat_interleave(torch.arange(200), crow.diff())
    ])
    with pytest.raises(NonFiniteError, match="'data.edge_attr'") as info:
        SubgraphLoader(bad, ptr)
    assert info.value.rows == [target]


def test_edge_weight_without_weighted_adjacency_warns():
    from torch_autoscale.testing import clustered_graph
    data, ptr = clustered_graph(200, 4, num_classes=2, avg_degree=4)
    crow = data.adj_t.crow_indices()
    data.edge_index = torch.stack([data.adj_t.col_indices(),
                                   torch.repeat_interleave(
                                       torch.arange(200), crow.diff())])
    del data.adj_t
    data.edge_weight = torch.rand(data.edge_index.size(1))
    with pytest.warns(UserWarning, match='ignore the weights.*csr_adj_t'):
        SubgraphLoader(data, ptr)


def test_checks_read_large_graphs_in_chunks(monkeypatch):
    # The checks of a loader over a memory-mapped graph read a bounded
    # number of values at a time and still name the right nodes.
    import torch_autoscale.loader.subgraph_loader as module
    from torch_autoscale.errors import NonFiniteError
    from torch_autoscale.testing import clustered_graph
    monkeypatch.setattr(module, 'CHECK_CHUNK', 13)
    data, ptr = clustered_graph(200, 4, num_classes=2, avg_degree=4)
    bad = data.clone()
    bad.x = data.x.clone()
    bad.x[[3, 150], 1] = float('nan')
    with pytest.raises(NonFiniteError) as info:
        SubgraphLoader(bad, ptr)
    assert info.value.rows == [3, 150]
    crow = data.adj_t.crow_indices()
    value = data.adj_t.values().clone()
    value[[7, 500]] = float('inf')
    bad = data.clone()
    bad.adj_t = torch.sparse_csr_tensor(crow, data.adj_t.col_indices(),
                                        value, data.adj_t.size())
    with pytest.raises(NonFiniteError) as info:
        SubgraphLoader(bad, ptr)
    targets = (torch.searchsorted(crow, torch.tensor([7, 500]),
                                  right=True) - 1).tolist()
    assert info.value.rows == targets
    # The unpermuted-graph warning counts the same edges in chunks.
    shuffled = data.clone()
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    from torch_autoscale.partition import permute
    shuffled = permute(shuffled, perm)
    with pytest.warns(UserWarning, match='looks unpermuted'):
        SubgraphLoader(shuffled, ptr)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        SubgraphLoader(data, ptr)
