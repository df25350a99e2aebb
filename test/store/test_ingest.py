import pytest
import torch
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from torch_autoscale.store import buckets, ingest_edge_list, read_edge_chunks
from torch_autoscale.utils import csr_adj_t

N = 50


@pytest.fixture
def edges():
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(N, (2, 400), generator=gen)
    edge_index[:, :5] = torch.tensor([[3, 3, 7, 7, 7], [3, 4, 7, 1, 1]])
    return edge_index


def write(edge_index, path, format, dtype='int64'):
    if format == 'binary':
        edge_index.t().numpy().astype(dtype).tofile(path)
    else:
        lines = ['# a comment', '% another']
        lines += [f'{s},{d}' if i % 2 else f'{s}\t{d}'
                  for i, (s, d) in enumerate(edge_index.t().tolist())]
        path.write_text('\n'.join(lines) + '\n')


def expected(edge_index, undirected, remove_loops, dedup):
    if remove_loops:
        edge_index, _ = remove_self_loops(edge_index)
    if undirected:
        edge_index = to_undirected(edge_index, num_nodes=N)
    if dedup:
        edge_index = coalesce(edge_index, num_nodes=N)
    return csr_adj_t(edge_index, N)


@pytest.mark.parametrize('format', ['binary', 'text'])
@pytest.mark.parametrize('flags', [
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, True, True),
])
@pytest.mark.parametrize('bucket_entries', [None, 11])
def test_ingest_equals_in_memory(tmp_path, monkeypatch, edges, format, flags,
                                 bucket_entries):
    if bucket_entries is not None:  # Many ranges of rows, some one row.
        monkeypatch.setattr(buckets, 'BUCKET_ENTRIES', bucket_entries)
    source = tmp_path / 'edges'
    write(edges, source, format)
    undirected, remove_loops, dedup = flags
    store = ingest_edge_list(
        source, tmp_path / 'g', num_nodes=N, format=format,
        undirected=undirected, remove_self_loops=remove_loops,
        coalesce=dedup, chunk_edges=37, progress=False)
    ref = expected(edges, *flags)
    assert torch.equal(store['rowptr'], ref.crow_indices())
    assert torch.equal(store['col'], ref.col_indices())
    store.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['edges', 'g']


def test_num_nodes_inferred_and_node_arrays(tmp_path, edges):
    write(edges, tmp_path / 'e.bin', 'binary', dtype='int32')
    num_nodes = int(edges.max()) + 1
    x = torch.randn(num_nodes, 3)
    store = ingest_edge_list(tmp_path / 'e.bin', tmp_path / 'g',
                             dtype='int32', node_arrays=dict(x=x),
                             progress=False)
    assert store.num_nodes == num_nodes
    assert torch.equal(store['x'], x)
    ref = csr_adj_t(edges, num_nodes)
    assert torch.equal(store['col'], ref.col_indices())


def test_chunks(tmp_path, edges):
    write(edges, tmp_path / 'e.bin', 'binary')
    blocks = list(read_edge_chunks(tmp_path / 'e.bin', chunk_edges=150))
    assert [b.size(1) for b in blocks] == [150, 150, 100]
    assert torch.equal(torch.cat(blocks, dim=1), edges)


def test_bad_input(tmp_path, edges):
    write(edges, tmp_path / 'e.bin', 'binary')
    with pytest.raises(ValueError, match=r'outside \[0, 10\)'):
        ingest_edge_list(tmp_path / 'e.bin', tmp_path / 'g', num_nodes=10,
                         progress=False)
    with open(tmp_path / 'e.bin', 'ab') as f:
        f.write(b'\0\0\0')
    with pytest.raises(ValueError, match='not a whole number'):
        ingest_edge_list(tmp_path / 'e.bin', tmp_path / 'g', progress=False)
    (tmp_path / 'e.txt').write_text('1 2\n3\n')
    with pytest.raises(ValueError, match='line 2 .* two node ids'):
        ingest_edge_list(tmp_path / 'e.txt', tmp_path / 'g', format='text',
                         progress=False)
    (tmp_path / 'e.txt').write_text('1 2\n3 x\n')
    with pytest.raises(ValueError, match='two integer node ids'):
        ingest_edge_list(tmp_path / 'e.txt', tmp_path / 'g', format='text',
                         progress=False)
    with pytest.raises(ValueError, match='unknown edge-list format'):
        ingest_edge_list(tmp_path / 'e.txt', tmp_path / 'g', format='csv',
                         progress=False)
    with pytest.raises(ValueError, match="node array 'x'"):
        ingest_edge_list(tmp_path / 'e.txt', tmp_path / 'g', num_nodes=4,
                         format='text', node_arrays=dict(x=torch.zeros(3)),
                         progress=False)
    assert not (tmp_path / 'g').exists()
