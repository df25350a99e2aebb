r"""Large synthetic graphs with learnable labels, written straight to a
:class:`~torch_autoscale.store.GraphStore` in chunks."""
import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Dict, Optional

import torch
from tqdm.auto import tqdm

from torch_autoscale.history.files import check_directory, reserve
from torch_autoscale.utils.checks import check_int

from .format import GraphStore, chunks, dtype_name
from .ingest import ingest_edge_list


def generate_edge_list(folder: str, num_nodes: int,
                       community_size: int = 1000, num_classes: int = 10,
                       avg_degree: float = 10.0, homophily: float = 0.8,
                       num_features: int = 64, feature_signal: float = 0.3,
                       dtype: torch.dtype = torch.float16,
                       train_ratio: float = 0.1, val_ratio: float = 0.1,
                       seed: int = 0, chunk_nodes: int = 1 << 20,
                       progress: bool = True,
                       locality: Optional[int] = None) -> Dict[str, Any]:
    r"""Generates the graph of :func:`generate_store` as raw files in the
    existing folder :obj:`folder`: :obj:`edges.bin` (int64 (source,
    target) pairs, for :func:`~torch_autoscale.store.ingest_edge_list`),
    :obj:`x.bin` (the features, :obj:`dtype`) and :obj:`nodes.pt` (labels
    and masks). Returns the node arrays by name, with :obj:`x` memory-mapped
    from :obj:`x.bin`: the :obj:`node_arrays` of
    :func:`~torch_autoscale.store.ingest_edge_list`.

    Args:
        folder (str): Where the files go.
        num_nodes (int): The number of nodes.
        **kwargs: The further arguments of :func:`generate_store`.
    """
    n = check_int(num_nodes, 'num_nodes', 2)
    community_size = check_int(community_size, 'community_size', 1)
    num_classes = check_int(num_classes, 'num_classes', 1)
    num_features = check_int(num_features, 'num_features', 1)
    chunk_nodes = check_int(chunk_nodes, 'chunk_nodes', 1)
    seed = check_int(seed, 'seed', 0)
    if locality is not None:
        locality = check_int(locality, 'locality', 1)
    if not 0.0 <= homophily <= 1.0 or avg_degree < 0:
        raise ValueError("'homophily' must lie in [0, 1] and 'avg_degree' "
                         "be non-negative")
    if train_ratio < 0 or val_ratio < 0 or train_ratio + val_ratio > 1:
        raise ValueError("'train_ratio' and 'val_ratio' must be "
                         "non-negative and sum to at most 1")
    dtype_name(dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"'dtype' must be a floating point dtype (got "
                         f"{dtype})")
    folder = check_directory(folder)
    gen = torch.Generator().manual_seed(seed)
    # Node i belongs to community position[i] // community_size.
    position = torch.randperm(n, generator=gen)
    num_communities = -(-n // community_size)
    by_position = torch.empty_like(position)
    by_position[position] = torch.arange(n)
    community_class = torch.randint(num_classes, (num_communities, ),
                                    generator=gen)
    centroids = torch.randn(num_classes, num_features, generator=gen)
    y = community_class[position // community_size]
    split = torch.rand(n, generator=gen)
    nodes = dict(y=y, train_mask=split < train_ratio,
                 val_mask=(split >= train_ratio)
                 & (split < train_ratio + val_ratio),
                 test_mask=split >= train_ratio + val_ratio)
    del split

    x_file = osp.join(folder, 'x.bin')
    fd = os.open(x_file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:  # Reserved, so that a full disk is an error, not a SIGBUS.
        reserve(fd, n * num_features * dtype.itemsize,
                'the generated features', folder)
    finally:
        os.close(fd)
    x = torch.from_file(x_file, shared=True, size=n * num_features,
                        dtype=dtype).view(n, num_features)
    per_node = avg_degree / 2
    with open(osp.join(folder, 'edges.bin'), 'wb') as f:
        for i, (start, end) in enumerate(tqdm(
                list(chunks(n, chunk_nodes)), desc='Generating',
                unit=' chunks', disable=not progress, leave=False)):
            g = torch.Generator().manual_seed(seed * 1_000_003 + i + 1)
            count = int(round(per_node * (end - start)))
            src = start + torch.randint(end - start, (count, ), generator=g)
            pos = position[src]

            def member(community: torch.Tensor) -> torch.Tensor:
                # A random position in each community.
                base = community * community_size
                size = torch.clamp(n - base, max=community_size)
                return base + (torch.rand(count, generator=g) * size).long()

            inner = member(pos // community_size)
            if locality is None:
                anywhere = torch.randint(n, (count, ), generator=g)
            else:  # A community within `locality` on either side.
                shift = torch.randint(2 * locality, (count, ), generator=g)
                shift = torch.where(shift < locality, shift - locality,
                                    shift - locality + 1)
                anywhere = by_position[member(
                    (pos // community_size + shift) % num_communities)]
            keep = torch.rand(count, generator=g) < homophily
            dst = torch.where(keep, by_position[inner], anywhere)
            torch.stack([src, dst], 1).numpy().tofile(f)
            feats = feature_signal * centroids[y[start:end]] + torch.randn(
                end - start, num_features, generator=g)
            x[start:end] = feats.to(dtype)
    torch.save(nodes, osp.join(folder, 'nodes.pt'))
    return dict(x=x, **nodes)


def generate_store(path: str, num_nodes: int,
                   workdir: Optional[str] = None, overwrite: bool = False,
                   checksums: bool = True, progress: bool = True,
                   **kwargs) -> GraphStore:
    r"""Generates a graph of communities with noisy community features and
    writes it to a :class:`~torch_autoscale.store.GraphStore` at
    :obj:`path`, with memory bounded by the number of nodes and
    :obj:`chunk_nodes` (the edges go through an edge list on disk,
    :func:`generate_edge_list`, and
    :func:`~torch_autoscale.store.ingest_edge_list`).

    Nodes form communities of :obj:`community_size` nodes (scattered over
    the node ids by a random permutation, so that a partitioner has
    something to find); a community's class is one of :obj:`num_classes`.
    Every node starts :obj:`avg_degree / 2` edges, each to a random node of
    its own community with probability :obj:`homophily` and otherwise to a
    random node of the graph, or, with :obj:`locality`, of one of the
    :obj:`locality` communities on either side of its own (communities form
    a ring: a graph whose cut edges stay near, as in graphs of places or of
    web hosts, rather than going anywhere); the graph is then made
    undirected, without self-loops or duplicates. Features are the class
    centroid times :obj:`feature_signal` plus standard Gaussian noise, so
    labels are learnable from neighbourhoods rather than from a node's own
    features.
    The same :obj:`seed` and :obj:`chunk_nodes` give the same graph.

    Args:
        path (str): The store's folder.
        num_nodes (int): The number of nodes.
        workdir (str, optional): The folder of the intermediate files
            (removed at the end). (default: :obj:`None`, beside
            :obj:`path`)
        overwrite (bool, optional): Whether to replace an existing store.
            (default: :obj:`False`)
        checksums (bool, optional): Whether to record a checksum per array.
            (default: :obj:`True`)
        progress (bool, optional): Whether to show progress bars.
            (default: :obj:`True`)
        community_size (int, optional): Nodes per community.
            (default: :obj:`1000`)
        num_classes (int, optional): The number of classes.
            (default: :obj:`10`)
        avg_degree (float, optional): Edges started per node, times two.
            (default: :obj:`10.0`)
        homophily (float, optional): The probability that an edge stays in
            its community. (default: :obj:`0.8`)
        num_features (int, optional): The feature width.
            (default: :obj:`64`)
        feature_signal (float, optional): The scale of the class centroids
            relative to the unit noise. (default: :obj:`0.3`)
        locality (int, optional): How many communities on either side of
            its own an edge leaving its community may reach.
            (default: :obj:`None`, any)
        dtype (torch.dtype, optional): The feature dtype.
            (default: :obj:`torch.float16`)
        train_ratio (float, optional): The fraction of training nodes.
            (default: :obj:`0.1`)
        val_ratio (float, optional): The fraction of validation nodes.
            (default: :obj:`0.1`)
        seed (int, optional): The random seed. (default: :obj:`0`)
        chunk_nodes (int, optional): Nodes generated at a time.
            (default: :obj:`2**20`)
    """
    path = osp.abspath(os.fspath(path))
    workdir = check_directory(workdir if workdir is not None else
                              osp.dirname(path))
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(path)}.generate-',
                           dir=workdir)
    try:
        arrays = generate_edge_list(tmp, num_nodes, progress=progress,
                                    **kwargs)
        return ingest_edge_list(
            osp.join(tmp, 'edges.bin'), path, num_nodes=num_nodes,
            undirected=True, remove_self_loops=True, node_arrays=arrays,
            overwrite=overwrite, checksums=checksums, progress=progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ['generate_store', 'generate_edge_list']
