import pytest
import torch

from torch_autoscale.store import generate_store


def test_generated_graph(tmp_path):
    store = generate_store(tmp_path / 'g', 3000, community_size=100,
                           num_classes=5, avg_degree=8, num_features=16,
                           chunk_nodes=700, progress=False)
    assert store.num_nodes == 3000
    assert store['x'].dtype == torch.float16 and store['x'].shape == (3000,
                                                                     16)
    rowptr, col, y = store['rowptr'], store['col'], store['y']
    row = torch.repeat_interleave(torch.arange(3000), rowptr.diff())
    # Undirected, no self-loops, no duplicates:
    key = row * 3000 + col
    assert torch.equal(key.sort().values,
                       (col * 3000 + row).sort().values)
    assert not bool((row == col).any())
    assert key.unique().numel() == key.numel()
    assert 7.0 < store.num_edges / 3000 < 8.5
    # Homophilous: far more edges within a class than the 1 / 5 of chance.
    assert float((y[row] == y[col]).float().mean()) > 0.7
    masks = torch.stack([store[k] for k in ('train_mask', 'val_mask',
                                            'test_mask')])
    assert bool((masks.sum(0) == 1).all())
    assert 0.05 < float(store['train_mask'].float().mean()) < 0.15
    assert [p.name for p in tmp_path.iterdir()] == ['g']  # No leftovers.
    # The same seed and chunks give the same graph.
    again = generate_store(tmp_path / 'h', 3000, community_size=100,
                           num_classes=5, avg_degree=8, num_features=16,
                           chunk_nodes=700, progress=False)
    for name in store.names:
        assert torch.equal(store[name], again[name])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="'num_nodes' must be at least 2"):
        generate_store(tmp_path / 'g', 1, progress=False)
    with pytest.raises(ValueError, match="'homophily'"):
        generate_store(tmp_path / 'g', 10, homophily=2.0, progress=False)
    with pytest.raises(ValueError, match='floating point'):
        generate_store(tmp_path / 'g', 10, dtype=torch.int64,
                       progress=False)
    assert list(tmp_path.iterdir()) == []


def test_locality_keeps_cut_edges_near(tmp_path):
    kwargs = dict(community_size=50, num_classes=5, avg_degree=8,
                  num_features=4, homophily=0.5, chunk_nodes=700,
                  progress=False)
    n, num_communities = 3000, 60
    # The generator's communities: node i is at position[i] of a random
    # permutation drawn first from the seed.
    position = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    community = position // 50

    def ring_distance(store):
        rowptr, col = store['rowptr'], store['col']
        row = torch.repeat_interleave(torch.arange(n), rowptr.diff())
        d = (community[row] - community[col]).abs()
        return torch.minimum(d, num_communities - d)

    near = ring_distance(generate_store(tmp_path / 'near', n, locality=2,
                                        **kwargs))
    anywhere = ring_distance(generate_store(tmp_path / 'far', n, **kwargs))
    assert int(near.max()) == 2
    assert float((near == 0).float().mean()) > 0.4  # Homophily holds.
    assert bool((near == 1).any()) and bool((near == 2).any())
    assert int(anywhere.max()) > 20
    with pytest.raises(ValueError, match="'locality' must be at least 1"):
        generate_store(tmp_path / 'g', 10, locality=0, progress=False)
