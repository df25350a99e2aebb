
import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.loader import SubgraphLoader
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.plan import GraphStats, ModelSpec, halo_stats
from torch_autoscale.plan.stats import graph_edges
from torch_autoscale.store import store_from_data
from torch_autoscale.utils import csr_adj_t



def ring(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])


def test_graph_stats(graph):
    stats = GraphStats.from_data(graph)
    assert stats.num_edges == graph.edge_index.size(1)
    assert stats.feature_bytes == graph.x.numel() * 4
    csr = Data(x=graph.x, adj_t=csr_adj_t(graph.edge_index, graph.num_nodes),
               num_nodes=graph.num_nodes)
    assert GraphStats.from_data(csr) == stats
    with pytest.raises(ValueError, match="'num_nodes'"):
        GraphStats(-1, 0, 0)
    assert not stats.on_disk and stats.store_bytes is None
    assert stats.resident_bytes == stats.graph_bytes


def test_graph_stats_of_a_store(graph, tmp_path):
    store = store_from_data(graph, tmp_path / 'g')
    memory = GraphStats.from_data(graph)
    stats = GraphStats.from_store(store)
    assert stats.on_disk and stats.store_bytes == store.nbytes
    assert (stats.num_nodes, stats.num_edges, stats.num_features,
            stats.feature_bytes) == (memory.num_nodes, memory.num_edges,
                                     memory.num_features,
                                     memory.feature_bytes)
    # In memory: only the adjacency's values, ones made by 'to_data()'
    # because the store has none.
    assert 'value' not in store
    assert stats.resident_bytes == 4 * stats.num_edges
    assert GraphStats(10, 20, 3, store_bytes=100).resident_bytes == 0
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="'store_bytes' must be a "
                           "non-negative integer or None"):
            GraphStats(10, 20, 3, store_bytes=bad)
    with pytest.raises(ValueError, match="'resident_bytes'"):
        GraphStats(10, 20, 3, resident_bytes=-1)


def test_graph_stats_recognise_a_memory_mapped_data(graph, tmp_path):
    store = store_from_data(graph, tmp_path / 'g')
    stats = GraphStats.from_store(store)
    assert GraphStats.from_data(store.to_data()) == stats
    # A replaced attribute is in memory, whatever the object it sits in:
    data = store.to_data()
    data.x = data.x.clone()
    mixed = GraphStats.from_data(data)
    assert mixed.store_bytes == store.nbytes - stats.feature_bytes
    assert mixed.resident_bytes == stats.resident_bytes + stats.feature_bytes
    # All of it in memory: planned as always.
    data = store.to_data()
    for key in store.names:
        if key in data:
            data[key] = data[key].clone()
    data.adj_t = data.adj_t.clone()
    assert GraphStats.from_data(data) == GraphStats.from_data(graph)
    # Files mapped from outside a store are not a store's:
    path = str(tmp_path / 'x.bin')
    graph.x.numpy().tofile(path)
    x = torch.from_file(path, size=graph.x.numel()).view(graph.x.shape)
    data = Data(x=x, edge_index=graph.edge_index, num_nodes=graph.num_nodes)
    assert GraphStats.from_data(data) == GraphStats.from_data(graph)


def test_graph_edges_from_a_csr_adjacency(graph):
    adj_t = csr_adj_t(graph.edge_index, graph.num_nodes)
    edges = graph_edges(Data(adj_t=adj_t, num_nodes=graph.num_nodes))
    # Rows of 'adj_t' are targets: the same edges, sorted by target.
    key = lambda e: set(zip(e[0].tolist(), e[1].tolist()))  # noqa: E731
    assert key(edges) == key(graph.edge_index)
    with pytest.raises(ValueError, match='edge_index'):
        graph_edges(Data(x=graph.x, num_nodes=graph.num_nodes))


def test_model_spec(graph):
    spec = ModelSpec(3, 16, 64, 8)
    assert spec.widths == [16, 64, 64, 8]
    assert spec.num_histories == 2
    assert spec.num_parameters == 16 * 64 + 64 + 64 * 64 + 64 + 64 * 8 + 8
    with pytest.raises(ValueError, match='num_layers'):
        ModelSpec(0, 3, 4, 5)
    from torch_autoscale.nn.models import GCN
    model = GCN(graph.num_nodes, 16, 64, 8, 3)
    assert ModelSpec.from_model(model).widths == spec.widths
    with pytest.raises(ValueError, match='ModelSpec by hand'):
        ModelSpec.from_model(torch.nn.Linear(2, 2))


def test_halo_stats_match_the_loader(graph):
    cluster = metis(graph.edge_index, graph.num_nodes, 12)
    perm, ptr = sort_by_cluster(cluster, 12)
    data = permute(graph, perm)
    data.adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    for batch_size in (1, 3, 12):
        stats = halo_stats(data.edge_index, ptr, batch_size)
        batches = list(SubgraphLoader(data, ptr, batch_size=batch_size))
        halos = [b.n_id.numel() - b.batch_size for b in batches]
        assert stats.num_batches == len(batches)
        assert stats.max_halo == max(halos)
        assert stats.max_nodes == max(b.batch_size for b in batches)
        assert stats.max_rows == max(b.n_id.numel() for b in batches)
        assert stats.mean_halo == pytest.approx(sum(halos) / len(halos))
    assert halo_stats(data.edge_index, ptr, 12).max_halo == 0


def test_halo_stats_checks_ptr_against_the_graph():
    t = torch.tensor
    # 'ptr' past the graph used to count 10 nodes that do not exist:
    with pytest.raises(ValueError, match="'ptr' ends at 20 but 'edge_index' "
                       "spans 10 nodes"):
        halo_stats(ring(10), t([0, 5, 20]), 1)
    with pytest.raises(ValueError, match="'ptr' ends at 20 but the graph "
                       "has 10 nodes"):
        halo_stats(ring(10), t([0, 5, 20]), 1, num_nodes=10)
    with pytest.raises(ValueError, match="'ptr' ends at 8"):
        halo_stats(ring(10), t([0, 5, 8]), 1)
    with pytest.raises(ValueError, match="'edge_index' holds node index 9"):
        halo_stats(ring(10), t([0, 5, 8]), 1, num_nodes=8)
    # Isolated nodes past the last edge, when 'num_nodes' says so:
    assert halo_stats(ring(10), t([0, 5, 20]), 1, num_nodes=20).max_nodes \
        == 15
    for ptr, match in ((t([0., 5., 10.]), 'integer'), (t([1, 5, 10]),
                                                       'start at 0'),
                       (t([0, 6, 5, 10]), 'non-decreasing'),
                       (t([10]), 'length num_parts')):
        with pytest.raises(ValueError, match=f"'ptr'.*{match}"):
            halo_stats(ring(10), ptr, 1)
    for batch_size in (0, 1.5):
        with pytest.raises(ValueError, match="'batch_size'"):
            halo_stats(ring(10), t([0, 5, 10]), batch_size)
    with pytest.raises(ValueError, match="'edge_index'"):
        halo_stats(ring(10).float(), t([0, 5, 10]), 1)
