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
