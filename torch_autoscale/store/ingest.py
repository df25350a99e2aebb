r"""Writing graphs into a :class:`~torch_autoscale.store.GraphStore`: from
an in-memory PyG :class:`~torch_geometric.data.Data`, and from an edge list
on disk streamed in chunks, with memory bounded by the number of nodes."""
import os
from typing import Dict, Iterator, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from torch_autoscale.utils.checks import check_int
from torch_autoscale.utils.sparse import to_csr

from . import buckets
from .buckets import RowBuckets, bucket_bounds
from .format import GraphStore, GraphStoreWriter, chunks

#: The formats :func:`ingest_edge_list` reads.
EDGE_FORMATS = ('binary', 'text')
#: Edges read (and CSR entries sorted) at a time.
CHUNK_EDGES = 1 << 22


def store_from_data(data: Data, path: str, overwrite: bool = False,
                    checksums: bool = True) -> GraphStore:
    r"""Writes the in-memory graph :obj:`data` as a
    :class:`~torch_autoscale.store.GraphStore` and opens it.

    The adjacency is that of
    :func:`~torch_autoscale.utils.csr_adj_t` (rows are targets, duplicate
    edges and self-loops kept as they are; with a sparse :obj:`data.adj_t`,
    that matrix), its values (:obj:`data.edge_weight`, or those of
    :obj:`adj_t`) become the :obj:`"value"` array unless they are all one,
    and every node-level tensor (:obj:`x`, :obj:`y`, masks, ...) becomes an
    array of the same name and dtype.

    Args:
        data (torch_geometric.data.Data): The graph.
        path (str): The store's folder.
        overwrite (bool, optional): Whether to replace an existing store.
            (default: :obj:`False`)
        checksums (bool, optional): Whether to record a checksum per array
            (see :class:`~torch_autoscale.store.GraphStoreWriter`).
            (default: :obj:`True`)
    """
    if not isinstance(data, Data):
        raise ValueError(f"'data' must be a torch_geometric.data.Data (got "
                         f"{type(data).__name__})")
    num_nodes = data.num_nodes
    rowptr, col, value, edge_perm = to_csr(data)
    weight = data.get('edge_weight')
    if value is None and isinstance(weight, Tensor) and 'adj_t' not in data:
        if weight.dim() != 1 or weight.numel() != edge_perm.numel():
            raise ValueError(f"'data.edge_weight' must hold one weight per "
                             f"edge ({edge_perm.numel()})")
        value = weight[edge_perm]
    with GraphStoreWriter(path, num_nodes, overwrite=overwrite,
                          checksums=checksums) as writer:
        writer.put('rowptr', rowptr.long())
        writer.put('col', col.long())
        if value is not None and not bool((value == 1).all()):
            writer.put('value', value)
        for key, attr in data.items():
            if key in ('edge_index', 'adj_t', 'edge_weight', 'num_nodes'):
                continue
            if isinstance(attr, Tensor) and attr.layout == torch.strided \
                    and attr.dim() > 0 and attr.size(0) == num_nodes \
                    and data.is_node_attr(key):
                writer.put(key, attr)
            elif isinstance(attr, (int, float, str, bool)):
                writer.attrs[key] = attr
    return GraphStore(path)


def read_edge_chunks(path: str, format: str = 'binary',
                     chunk_edges: int = CHUNK_EDGES,
                     dtype: Union[str, np.dtype] = 'int64'
                     ) -> Iterator[Tensor]:
    r"""Yields the edges of the edge-list file :obj:`path` as
    :obj:`[2, n]` int64 tensors of at most :obj:`chunk_edges` edges each
    (sources in row 0, targets in row 1).

    Args:
        path (str): The file.
        format (str, optional): :obj:`"binary"`: consecutive (source,
            target) pairs of :obj:`dtype` integers (what
            :obj:`edge_index.t().numpy().tofile(path)` writes);
            :obj:`"text"`: one edge per line, two integers separated by
            white space or a comma, lines starting with :obj:`#` or
            :obj:`%` ignored (SNAP's and Matrix Market's comments).
            (default: :obj:`"binary"`)
        chunk_edges (int, optional): The most edges per chunk.
            (default: :obj:`CHUNK_EDGES`)
        dtype (str, optional): The integer type of a binary file.
            (default: :obj:`"int64"`)
    """
    if format not in EDGE_FORMATS:
        raise ValueError(f"unknown edge-list format {format!r}; pass one of "
                         f"{EDGE_FORMATS}")
    chunk_edges = check_int(chunk_edges, 'chunk_edges', 1)
    if format == 'binary':
        yield from _binary_chunks(os.fspath(path), chunk_edges,
                                  np.dtype(dtype))
    else:
        yield from _text_chunks(os.fspath(path), chunk_edges)


def _binary_chunks(path: str, chunk_edges: int,
                   dtype: np.dtype) -> Iterator[Tensor]:
    if dtype.kind not in 'iu':
        raise ValueError(f"'dtype' of a binary edge list must be an integer "
                         f"type (got {dtype})")
    size = os.path.getsize(path)
    pair = 2 * dtype.itemsize
    if size % pair != 0:
        raise ValueError(f"edge list {path!r} holds {size} bytes, not a "
                         f"whole number of ({dtype}, {dtype}) pairs; it is "
                         f"truncated or of another dtype")
    num_edges = size // pair
    if num_edges == 0:
        return
    pairs = np.memmap(path, dtype=dtype, mode='r', shape=(num_edges, 2))
    for start, end in chunks(num_edges, chunk_edges):
        block = torch.from_numpy(np.array(pairs[start:end], dtype=np.int64))
        yield block.t()


def _text_chunks(path: str, chunk_edges: int) -> Iterator[Tensor]:
    buffer = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line[0] in '#%':
                continue
            parts = line.replace(',', ' ').split()
            if len(parts) < 2:
                raise ValueError(f"line {number} of edge list {path!r} does "
                                 f"not hold two node ids: {line[:80]!r}")
            try:
                buffer.append((int(parts[0]), int(parts[1])))
            except ValueError:
                raise ValueError(f"line {number} of edge list {path!r} does "
                                 f"not hold two integer node ids: "
                                 f"{line[:80]!r}") from None
            if len(buffer) == chunk_edges:
                yield torch.tensor(buffer, dtype=torch.long).t()
                buffer = []
    if buffer:
        yield torch.tensor(buffer, dtype=torch.long).t()


def ingest_edge_list(source: str, path: str,
                     num_nodes: Optional[int] = None,
                     format: str = 'binary', undirected: bool = False,
                     remove_self_loops: bool = False,
                     coalesce: bool = False,
                     node_arrays: Optional[Dict[str, Tensor]] = None,
                     chunk_edges: int = CHUNK_EDGES,
                     dtype: str = 'int64', overwrite: bool = False,
                     checksums: bool = True,
                     progress: bool = True) -> GraphStore:
    r"""Streams the edge list :obj:`source` into a
    :class:`~torch_autoscale.store.GraphStore` at :obj:`path`, with memory
    bounded by the number of nodes and :obj:`chunk_edges`, not by the number
    of edges: a pass counts the edges of every row, a second writes every
    edge to a temporary file of its range of rows, and a third sorts each
    range of rows in memory (dropping duplicates) and writes it out (an
    external bucket sort, :class:`~torch_autoscale.store.buckets.
    RowBuckets`: every write is sequential, so the CSR may be far larger
    than memory). Temporary files take about 12 bytes per entry.

    The adjacency is the one the in-memory path builds from the same
    edges: with :obj:`undirected`, :obj:`remove_self_loops` and
    :obj:`coalesce`, the CSR of
    :func:`~torch_autoscale.utils.csr_adj_t` applied to
    :func:`~torch_geometric.utils.coalesce`\
    (:func:`~torch_geometric.utils.to_undirected`\
    (:func:`~torch_geometric.utils.remove_self_loops`\ (edge_index)));
    rows are targets and columns are sorted within each row.

    Args:
        source (str): The edge-list file (see :func:`read_edge_chunks`).
        path (str): The store's folder.
        num_nodes (int, optional): The number of nodes. (default:
            :obj:`None`, one more than the largest node id, found by an
            extra pass)
        format (str, optional): :obj:`"binary"` or :obj:`"text"` (see
            :func:`read_edge_chunks`). (default: :obj:`"binary"`)
        undirected (bool, optional): Whether to add the reverse of every
            edge. As PyG's :func:`~torch_geometric.utils.to_undirected`, it
            implies :obj:`coalesce`. (default: :obj:`False`)
        remove_self_loops (bool, optional): Whether to drop edges from a
            node to itself. (default: :obj:`False`)
        coalesce (bool, optional): Whether to keep one of every duplicate
            edge. (default: :obj:`False`)
        node_arrays (dict, optional): Node-level arrays to store, by name
            (*e.g.*, :obj:`x`, :obj:`y`, :obj:`train_mask`), each with
            :obj:`num_nodes` rows; memory-mapped tensors are copied in
            chunks. (default: :obj:`None`)
        chunk_edges (int, optional): Edges read, and CSR entries sorted, at
            a time. (default: :obj:`CHUNK_EDGES`)
        dtype (str, optional): The integer type of a binary edge list.
            (default: :obj:`"int64"`)
        overwrite (bool, optional): Whether to replace an existing store.
            (default: :obj:`False`)
        checksums (bool, optional): Whether to record a checksum per array.
            (default: :obj:`True`)
        progress (bool, optional): Whether to show progress bars.
            (default: :obj:`True`)

    Raises:
        ValueError: If the file is malformed or holds a node id outside of
            :obj:`[0, num_nodes)`, or a node array has the wrong number of
            rows.
        StorageFullError: If the store's space cannot be reserved.
    """
    chunk_edges = check_int(chunk_edges, 'chunk_edges', 1)
    coalesce = coalesce or undirected

    def edges(desc: str) -> Iterator[Tensor]:
        bar = tqdm(desc=desc, unit=' edges', unit_scale=True,
                   disable=not progress, leave=False)
        for block in read_edge_chunks(source, format, chunk_edges, dtype):
            bar.update(block.size(1))
            if remove_self_loops:
                block = block[:, block[0] != block[1]]
            if undirected:
                block = torch.cat([block, block.flip(0)], dim=1)
            yield block
        bar.close()

    if num_nodes is None:
        num_nodes = 0
        for block in edges('Finding the number of nodes'):
            if block.numel() > 0:
                num_nodes = max(num_nodes, int(block.max()) + 1)
    num_nodes = check_int(num_nodes, 'num_nodes', 0)
    node_arrays = dict(node_arrays or {})
    for name, t in node_arrays.items():
        if not isinstance(t, Tensor) or t.dim() == 0 or \
                t.size(0) != num_nodes:
            raise ValueError(f"node array {name!r} must be a tensor with "
                             f"num_nodes={num_nodes} rows")

    # Pass 1: the number of entries of every row (rows are targets).
    count = torch.zeros(num_nodes, dtype=torch.long)
    for block in edges('Counting edges per node'):
        if block.numel() > 0 and (int(block.min()) < 0
                                  or int(block.max()) >= num_nodes):
            raise ValueError(f"edge list {source!r} holds node ids outside "
                             f"[0, {num_nodes}); pass the right 'num_nodes'")
        count += torch.bincount(block[1], minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=rowptr[1:])
    del count

    with GraphStoreWriter(path, num_nodes, overwrite=overwrite,
                          checksums=checksums) as writer, RowBuckets(
                              writer.tmp,
                              bucket_bounds(rowptr, buckets.BUCKET_ENTRIES),
                              {'col': (torch.long, ())}) as sorter:
        # Pass 2: every edge to the temporary file of its range of rows, in
        # the order read (sequential writes, see `RowBuckets`).
        for block in edges('Writing edges into rows'):
            sorter.append(block[1], col=block[0])

        # Pass 3: every range of rows sorted in memory (keeping one of each
        # duplicate) and written out, one after the other.
        col = writer.create('col_raw' if coalesce else 'col',
                            (int(rowptr[-1]), ), torch.long)
        new_rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        write = 0
        bar = tqdm(total=num_nodes, desc='Sorting rows', unit=' nodes',
                   unit_scale=True, disable=not progress, leave=False)
        for r0, r1, rows, values in sorter:
            key = ((rows - r0) * max(num_nodes, 1) + values['col']).sort()
            key = key.values
            del rows, values
            if coalesce:
                key = torch.unique_consecutive(key)
            rows, cols = key // max(num_nodes, 1), key % max(num_nodes, 1)
            col[write:write + cols.numel()] = cols
            new_rowptr[r0 + 1:r1 + 1] = write + torch.cumsum(
                torch.bincount(rows, minlength=r1 - r0), 0)
            write += cols.numel()
            bar.update(r1 - r0)
        bar.close()
        writer.put('rowptr', new_rowptr)
        if coalesce:  # The deduplicated prefix becomes the final array.
            out = writer.create('col', (write, ), torch.long)
            for start, end in chunks(write, chunk_edges):
                out[start:end] = col[start:end]
            del col, out
            writer.drop('col_raw')
        for name, t in node_arrays.items():
            writer.put(name, t)
    return GraphStore(path)
