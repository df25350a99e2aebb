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

from .format import GraphStore, GraphStoreWriter, chunks
from .ingest import CHUNK_EDGES


def permute_store(store: GraphStore, perm: Tensor, path: str,
                  chunk_edges: int = CHUNK_EDGES, overwrite: bool = False,
                  checksums: bool = True,
                  progress: bool = True) -> GraphStore:
    r"""Writes :obj:`store` with its nodes renumbered to a new store at
    :obj:`path`: new node :obj:`i` is old node :obj:`perm[i]`, as
    :func:`~torch_autoscale.partition.permute` does in memory (the result
    is the same graph, entry for entry). Rows are written in the new order,
    :obj:`chunk_edges` entries at a time, with their columns relabelled and
    sorted; node arrays are gathered in chunks. Memory is bounded by the
    number of nodes and :obj:`chunk_edges`.

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
        bar = tqdm(total=n, desc='Permuting rows', unit=' nodes',
                   unit_scale=True, disable=not progress, leave=False)
        for r0, r1 in row_blocks(new_rowptr, chunk_edges):
            old = perm[r0:r1]
            starts, counts = rowptr[old], rowptr[old + 1] - rowptr[old]
            # The old positions of the new rows' entries, row after row.
            offsets = torch.repeat_interleave(
                starts - (torch.cumsum(counts, 0) - counts), counts)
            pos = offsets + torch.arange(int(counts.sum()))
            rows = torch.repeat_interleave(
                torch.arange(r1 - r0, dtype=torch.long), counts)
            cols = inv[col[pos]]
            order = (rows * max(n, 1) + cols).argsort(stable=True)
            p0, p1 = int(new_rowptr[r0]), int(new_rowptr[r1])
            out_col[p0:p1] = cols[order]
            if out_value is not None:
                out_value[p0:p1] = value[pos][order]
            bar.update(r1 - r0)
        bar.close()
        for name in store.names:
            if name in ('rowptr', 'col', 'value'):
                continue
            src = store[name]
            dst = writer.create(name, tuple(src.shape), src.dtype)
            rows_per_chunk = max(1, chunk_edges // max(
                1, src[0].numel() if src.dim() > 1 else 1))
            for start, end in chunks(n, rows_per_chunk):
                dst[start:end] = src[perm[start:end]]
    return GraphStore(path)


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
