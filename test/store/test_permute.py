import pytest
import torch
import torch.nn.functional as F

from torch_autoscale.loader import EvalSubgraphLoader, SubgraphLoader
from torch_autoscale.nn.models import GraphSAGE
from torch_autoscale.partition import partition, permute, sort_by_cluster
from torch_autoscale.store import (
    buckets,
    partition_store,
    permute_store,
    store_from_data,
)
from torch_autoscale.utils import csr_adj_t
from test.loader.test_partitioned_data import random_graph


def graph():
    return random_graph(num_nodes=120, num_edges=150)


def in_memory(data):
    out = data.clone()
    out.adj_t = csr_adj_t(out.edge_index, out.num_nodes)
    del out.edge_index
    return out


@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('bucket_entries', [None, 17])
def test_permute_store_equals_permute(tmp_path, monkeypatch, weighted,
                                      bucket_entries):
    if bucket_entries is not None:  # Many ranges of rows.
        monkeypatch.setattr(buckets, 'BUCKET_ENTRIES', bucket_entries)
    data = graph()
    if weighted:
        data.edge_weight = torch.rand(data.edge_index.size(1))
    store = store_from_data(data, tmp_path / 'g')
    perm = torch.randperm(data.num_nodes,
                          generator=torch.Generator().manual_seed(1))
    out = permute_store(store, perm, tmp_path / 'p', chunk_edges=50,
                        progress=False)
    ref = in_memory(data)
    if weighted:
        ref.adj_t = csr_adj_t(data.edge_index, data.num_nodes,
                              data.edge_weight)
        del ref.edge_weight
    ref = permute(ref, perm)
    assert torch.equal(out['rowptr'], ref.adj_t.crow_indices())
    assert torch.equal(out['col'], ref.adj_t.col_indices())
    if weighted:
        assert torch.equal(out['value'], ref.adj_t.values())
    for key in ('x', 'y', 'train_mask'):
        assert torch.equal(out[key], ref[key])
    out.verify()


def test_bad_permutation(tmp_path):
    store = store_from_data(graph(), tmp_path / 'g')
    with pytest.raises(ValueError, match='permutation'):
        permute_store(store, torch.zeros(120, dtype=torch.long),
                      tmp_path / 'p', progress=False)
    with pytest.raises(ValueError, match='120 entries'):
        permute_store(store, torch.arange(10), tmp_path / 'p',
                      progress=False)
    assert not (tmp_path / 'p').exists()


def test_gas_from_the_store_equals_in_memory(tmp_path):
    data = graph()
    store = store_from_data(data, tmp_path / 'g')
    # The same partition from the store as from the graph in memory.
    cluster = partition(store.to_data(), 6, method='metis', seed=0)
    assert torch.equal(cluster, partition(data, 6, method='metis', seed=0))
    laid_out, perm, ptr = partition_store(store, cluster, 6, tmp_path / 'p',
                                          progress=False)
    ref_perm, ref_ptr = sort_by_cluster(cluster, 6)
    assert torch.equal(perm, ref_perm) and torch.equal(ptr, ref_ptr)
    ref = permute(in_memory(data), perm)

    outs, infers = [], []
    for graph_data in (laid_out.to_data(), ref):
        torch.manual_seed(0)
        model = GraphSAGE(data.num_nodes, 6, 16, 3, num_layers=3)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        loader = SubgraphLoader(graph_data, ptr, batch_size=2, shuffle=True)
        eval_loader = EvalSubgraphLoader(graph_data, ptr, batch_size=2)
        model.mini_inference(eval_loader, progress=False)
        steps = []
        for _ in range(3):
            for batch in loader:
                optimizer.zero_grad()
                out = model(batch.data.x, batch.data.adj_t, batch)
                bs = batch.batch_size
                mask = batch.data.train_mask[:bs]
                loss = F.cross_entropy(out[:bs][mask], batch.data.y[:bs][mask])
                loss.backward()
                optimizer.step()
                steps.append(out.detach())
        outs.append(steps)
        infers.append(model.mini_inference(eval_loader, progress=False))
    assert len(outs[0]) == len(outs[1]) == 9
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    assert torch.equal(infers[0], infers[1])
