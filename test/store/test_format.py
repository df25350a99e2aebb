import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch_geometric.data import Data

from torch_autoscale.errors import GraphStoreError
from torch_autoscale.store import (
    MANIFEST,
    GraphStore,
    GraphStoreWriter,
    store_from_data,
)
from torch_autoscale.utils import csr_adj_t


def graph(num_nodes=60, num_edges=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Data(
        x=torch.randn(num_nodes, 8, generator=gen).half(),
        y=torch.randint(4, (num_nodes, ), generator=gen),
        train_mask=torch.rand(num_nodes, generator=gen) < 0.5,
        edge_index=torch.randint(num_nodes, (2, num_edges), generator=gen),
        num_classes=4)


def test_round_trip(tmp_path):
    data = graph()
    store = store_from_data(data, tmp_path / 'g')
    adj_t = csr_adj_t(data.edge_index, data.num_nodes)
    assert store.num_nodes == 60 and store.num_edges == 300
    assert torch.equal(store['rowptr'], adj_t.crow_indices())
    assert torch.equal(store['col'], adj_t.col_indices())
    assert 'value' not in store  # All ones.
    for key in ('x', 'y', 'train_mask'):
        assert store[key].dtype == data[key].dtype
        assert torch.equal(store[key], data[key])
    assert store.attrs == {'num_classes': 4}
    out = store.to_data()
    assert torch.equal(out.adj_t.to_dense(), adj_t.to_dense())
    # Without weights, the ones are one broadcast element, not an
    # edge-sized array:
    assert out.adj_t.values().stride() == (0, )
    assert out.adj_t.values().untyped_storage().nbytes() == 4
    assert torch.equal(out.x, data.x) and out.num_nodes == 60
    store.verify()
    assert sorted(os.listdir(tmp_path)) == ['g']  # No temporaries left.
    # Edge weights become the adjacency's values.
    data.edge_weight = torch.rand(300)
    store = store_from_data(data, tmp_path / 'w')
    expected = csr_adj_t(data.edge_index, 60, data.edge_weight)
    assert torch.equal(store.adj_t().to_dense(), expected.to_dense())


def test_opening_reads_no_data(tmp_path):
    store_from_data(graph(), tmp_path / 'g')
    store = GraphStore(tmp_path / 'g')
    # The arrays are private memory maps of the files: changing one does
    # not change the file.
    store['y'][0] = 99
    assert int(GraphStore(tmp_path / 'g')['y'][0]) != 99


def damage(path, name, how):
    file = osp.join(path, f'{name}.bin')
    if how == 'truncate':
        with open(file, 'r+b') as f:
            f.truncate(os.path.getsize(file) - 4)
    elif how == 'flip':
        with open(file, 'r+b') as f:
            f.seek(3)
            byte = f.read(1)
            f.seek(3)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:
        os.remove(file)


@pytest.mark.parametrize('how,match', [
    ('truncate', 'truncated or damaged'),
    ('missing', 'misses the file'),
])
def test_damaged_files(tmp_path, how, match):
    store_from_data(graph(), tmp_path / 'g')
    damage(tmp_path / 'g', 'x', how)
    with pytest.raises(GraphStoreError, match=match):
        GraphStore(tmp_path / 'g')


def test_flipped_byte_fails_verify(tmp_path):
    store_from_data(graph(), tmp_path / 'g')
    damage(tmp_path / 'g', 'col', 'flip')
    store = GraphStore(tmp_path / 'g')  # Sizes are right: it opens.
    with pytest.raises(GraphStoreError, match="'col' .* does not match its"):
        store.verify()


def test_damaged_manifest(tmp_path):
    path = tmp_path / 'g'
    store_from_data(graph(), path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest['num_nodes'] = 61
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(GraphStoreError, match='does not match its checksum'):
        GraphStore(path)
    (path / MANIFEST).write_text('{"format": ')
    with pytest.raises(GraphStoreError, match='cannot be read'):
        GraphStore(path)
    (path / MANIFEST).unlink()
    with pytest.raises(GraphStoreError, match='is not a graph store'):
        GraphStore(path)


def test_other_version(tmp_path):
    from torch_autoscale.store.format import _manifest_checksum
    path = tmp_path / 'g'
    store_from_data(graph(), path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest['version'] = 99
    manifest['checksum'] = _manifest_checksum(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(GraphStoreError, match='format version 99'):
        GraphStore(path)


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match='boom'):
        with GraphStoreWriter(tmp_path / 'g', num_nodes=4) as writer:
            writer.create('x', (4, 2), torch.float32)
            raise RuntimeError('boom')
    assert os.listdir(tmp_path) == []
    writer = GraphStoreWriter(tmp_path / 'g', num_nodes=4)
    writer.put('rowptr', torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="needs the array 'col'"):
        writer.commit()
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_exists_and_overwrite(tmp_path):
    store_from_data(graph(seed=0), tmp_path / 'g')
    with pytest.raises(FileExistsError, match='overwrite=True'):
        store_from_data(graph(seed=1), tmp_path / 'g')
    data = graph(seed=1)
    store = store_from_data(data, tmp_path / 'g', overwrite=True)
    assert torch.equal(store['x'], data.x)
    assert os.listdir(tmp_path) == ['g']


def test_leftover_of_a_killed_writer_is_removed(tmp_path):
    # A writer killed before its commit leaves its temporary folder...
    code = (f"import os, torch\n"
            f"from torch_autoscale.store import GraphStoreWriter\n"
            f"w = GraphStoreWriter({str(tmp_path / 'g')!r}, num_nodes=4)\n"
            f"w.create('x', (4, 2), torch.float32)\n"
            f"os._exit(0)\n")
    subprocess.run([sys.executable, '-c', code], check=True)
    assert [p.startswith('.g.partial-') for p in os.listdir(tmp_path)] == [
        True]
    # ... which the next writer of the same path removes.
    store_from_data(graph(), tmp_path / 'g')
    assert os.listdir(tmp_path) == ['g']


def test_bad_arrays(tmp_path):
    writer = GraphStoreWriter(tmp_path / 'g', num_nodes=4)
    with pytest.raises(ValueError, match="'shape' of array 'x'"):
        writer.create('x', (4, -1), torch.float32)
    with pytest.raises(ValueError, match='dtypes'):
        writer.create('x', (4, ), torch.complex64)
    with pytest.raises(ValueError, match='identifiers'):
        writer.create('../x', (4, ), torch.float32)
    with pytest.raises(ValueError, match="'value' of array 'y'"):
        writer.put('y', [1, 2, 3, 4])
    writer.create('x', (4, ), torch.float32)
    with pytest.raises(ValueError, match='created already'):
        writer.create('x', (4, ), torch.float32)
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match='committed or aborted'):
        writer.create('z', (4, ), torch.float32)


def test_store_arrays_know_they_are_mapped(tmp_path):
    from torch_autoscale.store.format import is_store_mapped
    store = store_from_data(graph(), tmp_path / 'g')
    x = store.to_data().x
    assert is_store_mapped(x) and is_store_mapped(x[10:20, 1:])
    assert not is_store_mapped(x.clone())
    assert not is_store_mapped(torch.zeros(3)) and not is_store_mapped(None)
    part = store['col'][5:]
    del store, x
    assert is_store_mapped(part)  # A view keeps its mapping alive.
