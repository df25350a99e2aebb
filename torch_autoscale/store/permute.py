r"""Renumbering the nodes of a :class:`~torch_autoscale.store.GraphStore`
by a partition, streamed: every cluster becomes a contiguous range of rows,
so that a mini-batch reads its clusters as a few contiguous ranges."""
from typing import Tuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from torch_autoscale.partition import sort_by_cluster
from torch_autoscale.utils.checks import check_int
from torch_autoscale.utils.sparse import row_blocks

from . import buckets
from .buckets import RowBuckets, bucket_bounds
from .format import GraphStore, GraphStoreWriter, chunks
from .ingest import CHUNK_EDGES


def permute_store(store: GraphStore, perm: Tensor, path: str,
                  chunk_edges: int = CHUNK_EDGES, overwrite: bool = False,
                  checksums: bool = True,
                  progress: bool = True) -> GraphStore:
    r"""Writes :obj:`store` with its nodes renumbered to a new store at
    :obj:`path`: new node :obj:`i` is old node :obj:`perm[i]`, as
    :func:`~torch_autoscale.partition.permute` does in memory (the result
    is the same graph, entry for entry). The old rows and node arrays are
    read in order, :obj:`chunk_edges` entries at a time, and moved to their
    new rows by an external bucket sort
    (:class:`~torch_autoscale.store.buckets.RowBuckets`), so that every read
    and write is sequential and the store may be far larger than memory;
    columns are relabelled and sorted within rows. Memory is bounded by the
    number of nodes, :obj:`chunk_edges` and
    :obj:`~torch_autoscale.store.buckets.BUCKET_ENTRIES`; temporary files
    take about 12 bytes per entry.

    Args:
        store (GraphStore): The graph.
        perm (torch.Tensor): A permutation of :obj:`[0, num_nodes)`.
        path (str): The new store's folder.
        chunk_edges (int, optional): Entries moved at a time.
            (default: :obj:`CHUNK_EDGES`)
        overwrite (bool, optional): Whether to replace an existing store.
            (default: :obj:`False`)
        checksums (bool, optional): Whether to record a checksum per array.
            (default: :obj:`True`)
        progress (bool, optional): Whether to show progress bars.
            (default: :obj:`True`)
    """
    n = store.num_nodes
    chunk_edges = check_int(chunk_edges, 'chunk_edges', 1)
    if not isinstance(perm, Tensor) or perm.dim() != 1 or \
            perm.numel() != n or perm.is_floating_point():
        raise ValueError(f"'perm' must be a one-dimensional integer tensor "
                         f"of num_nodes={n} entries")
    perm = perm.long().cpu()
    inv = torch.full((n, ), -1, dtype=torch.long)
    inv[perm] = torch.arange(n)
    if n > 0 and bool((inv < 0).any()):
        raise ValueError("'perm' must be a permutation of [0, num_nodes): "
                         "every node exactly once")
    rowptr, col = store['rowptr'], store['col']
    value = store['value'] if 'value' in store else None
    count = (rowptr[1:] - rowptr[:-1])[perm]
    new_rowptr = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=new_rowptr[1:])

    with GraphStoreWriter(path, n, overwrite=overwrite,
                          checksums=checksums) as writer:
        writer.attrs.update(store.attrs)
        writer.put('rowptr', new_rowptr)
        out_col = writer.create('col', (store.num_edges, ), torch.long)
        out_value = None if value is None else writer.create(
            'value', tuple(value.shape), value.dtype)
        columns = {'col': (torch.long, ())}
        if value is not None:
            columns['value'] = (value.dtype, tuple(value.shape[1:]))
        bar = tqdm(total=2 * n, desc='Permuting rows', unit=' nodes',
                   unit_scale=True, disable=not progress, leave=False)
        # The old rows are read in order; every entry goes, relabelled, to
        # the temporary file of its new range of rows, and each range is
        # sorted in memory and written out (sequential reads and writes,
        # see `RowBuckets`).
        with RowBuckets(writer.tmp,
                        bucket_bounds(new_rowptr, buckets.BUCKET_ENTRIES),
                        columns) as sorter:
            for r0, r1 in row_blocks(rowptr, chunk_edges):
                p0, p1 = int(rowptr[r0]), int(rowptr[r1])
                rows = torch.repeat_interleave(
                    inv[r0:r1], rowptr[r0 + 1:r1 + 1] - rowptr[r0:r1])
                extra = {} if value is None else {'value': value[p0:p1]}
                sorter.append(rows, col=inv[col[p0:p1]], **extra)
                bar.update(r1 - r0)
            for r0, r1, rows, values in sorter:
                cols = values['col']
                order = ((rows - r0) * max(n, 1) + cols).argsort(stable=True)
                p0, p1 = int(new_rowptr[r0]), int(new_rowptr[r1])
                out_col[p0:p1] = cols[order]
                if out_value is not None:
                    out_value[p0:p1] = values['value'][order]
                bar.update(r1 - r0)
        bar.close()
        for name in store.names:
            if name in ('rowptr', 'col', 'value'):
                continue
            src = store[name]
            dst = writer.create(name, tuple(src.shape), src.dtype)
            _permute_rows(src, dst, inv, chunk_edges, writer.tmp)
    return GraphStore(path)


def _permute_rows(src: Tensor, dst: Tensor, inv: Tensor, chunk: int,
                  folder: str) -> None:
    r"""Writes :obj:`dst[inv[j]] = src[j]` for every row :obj:`j`, both
    arrays read and written in order: rows go to the temporary file of
    their new range of rows (see :class:`RowBuckets`), then every range is
    put together in memory and written out."""
    n = src.size(0)
    width = max(1, src[0].numel() if src.dim() > 1 else 1)
    per_range = max(1, buckets.BUCKET_ENTRIES // width)
    bounds = torch.tensor(list(range(0, n, per_range)) + [n],
                          dtype=torch.long)
    rows_per_chunk = max(1, chunk // width)
    with RowBuckets(folder, bounds,
                    {'x': (src.dtype, tuple(src.shape[1:]))}) as sorter:
        for start, end in chunks(n, rows_per_chunk):
            sorter.append(inv[start:end], x=src[start:end])
        for r0, r1, rows, values in sorter:
            out = torch.empty((r1 - r0, ) + tuple(src.shape[1:]),
                              dtype=src.dtype)
            out[rows - r0] = values['x']
            dst[r0:r1] = out


def partition_store(store: GraphStore, cluster: Tensor, num_parts: int,
                    path: str, **kwargs) -> Tuple[GraphStore, Tensor, Tensor]:
    r"""Lays :obj:`store` out by the clustering :obj:`cluster` (one part id
    in :obj:`[0, num_parts)` per node): every cluster a contiguous range of
    rows, as :func:`~torch_autoscale.partition.sort_by_cluster` and
    :func:`~torch_autoscale.partition.permute` do in memory.

    Returns:
        The new store at :obj:`path`, the permutation :obj:`perm` and the
        cluster boundaries :obj:`ptr`, for
        :class:`~torch_autoscale.loader.SubgraphLoader`.

    Args:
        store (GraphStore): The graph.
        cluster (torch.Tensor): The cluster of every node.
        num_parts (int): The number of clusters.
        path (str): The new store's folder.
        **kwargs (optional): Further arguments of :func:`permute_store`.
    """
    perm, ptr = sort_by_cluster(cluster, num_parts)
    out = permute_store(store, perm, path, **kwargs)
    return out, perm, ptr
