import math
from typing import Optional

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from .checks import check_int


def homophilous_sbm(num_nodes: int = 20_000, num_classes: int = 8,
                    avg_degree: float = 10.0, homophily: float = 0.8,
                    num_features: int = 32, feature_signal: float = 0.25,
                    train_ratio: float = 0.1, val_ratio: float = 0.1,
                    seed: Optional[int] = 0) -> Data:
    r"""Generates a homophilous stochastic-block-model graph for node
    classification, without a network.

    Every node gets a class (a block). Each of the
    :obj:`num_nodes * avg_degree / 2` undirected edges starts at a uniformly
    drawn node and ends, with probability :obj:`homophily`, at a uniformly
    drawn node of the same class, and otherwise at a uniformly drawn node of
    the whole graph. Endpoints are sampled directly, so generation takes
    :math:`O(|E|)` time and memory (unlike a dense block-probability matrix,
    which is quadratic in the number of nodes), and scales to millions of
    nodes. Features are a class centroid scaled by :obj:`feature_signal` plus
    standard Gaussian noise, so features alone separate classes only weakly
    and neighbourhoods carry most of the signal.

    Args:
        num_nodes (int, optional): The number of nodes. (default: :obj:`20000`)
        num_classes (int, optional): The number of classes (blocks).
            (default: :obj:`8`)
        avg_degree (float, optional): The average node degree.
            (default: :obj:`10.0`)
        homophily (float, optional): The probability that an edge stays inside
            its class. (default: :obj:`0.8`)
        num_features (int, optional): The feature width. (default: :obj:`32`)
        feature_signal (float, optional): The scale of the class centroids
            relative to unit noise. (default: :obj:`0.25`)
        train_ratio (float, optional): The fraction of training nodes.
            (default: :obj:`0.1`)
        val_ratio (float, optional): The fraction of validation nodes; the
            rest are test nodes. (default: :obj:`0.1`)
        seed (int, optional): The random seed. (default: :obj:`0`)

    Returns:
        A :class:`torch_geometric.data.Data` with :obj:`x`, :obj:`y`, an
        undirected :obj:`edge_index` and :obj:`train_mask`, :obj:`val_mask`,
        :obj:`test_mask`.

    Raises:
        ValueError: If an argument is of the wrong type or out of range (the
            message names it): counts must be integers, :obj:`avg_degree`
            must lie in :obj:`[0, num_nodes - 1]`, probabilities and ratios
            in :obj:`[0, 1]`.
    """
    num_nodes = check_int(num_nodes, 'num_nodes', 2)
    num_classes = check_int(num_classes, 'num_classes', 1)
    if num_classes > num_nodes:
        raise ValueError(f"'num_classes' must lie in [1, num_nodes] (got "
                         f"{num_classes} for {num_nodes} nodes)")
    num_features = check_int(num_features, 'num_features', 0)
    avg_degree = _real(avg_degree, 'avg_degree', 0.0, num_nodes - 1.0)
    homophily = _real(homophily, 'homophily', 0.0, 1.0)
    feature_signal = _real(feature_signal, 'feature_signal', -math.inf,
                           math.inf)
    train_ratio = _real(train_ratio, 'train_ratio', 0.0, 1.0)
    val_ratio = _real(val_ratio, 'val_ratio', 0.0, 1.0)
    if train_ratio + val_ratio > 1.0:
        raise ValueError(f"'train_ratio' and 'val_ratio' must sum to at most "
                         f"1 (got {train_ratio} + {val_ratio})")
    if seed is not None:
        seed = check_int(seed, 'seed', -2**63)
        if seed >= 2**64:
            raise ValueError(f"'seed' must lie in [-2**63, 2**64) (got "
                             f"{seed})")

    gen = torch.Generator()
    gen.manual_seed(seed if seed is not None else torch.seed())

    y = torch.randint(num_classes, (num_nodes, ), generator=gen)
    by_class = y.argsort()
    class_count = torch.bincount(y, minlength=num_classes)
    class_ptr = torch.zeros(num_classes + 1, dtype=torch.long)
    torch.cumsum(class_count, 0, out=class_ptr[1:])

    num_edges = int(num_nodes * avg_degree / 2)
    src = torch.randint(num_nodes, (num_edges, ), generator=gen)
    intra = torch.rand(num_edges, generator=gen) < homophily
    c = y[src]
    pos = class_ptr[c] + (torch.rand(num_edges, generator=gen) *
                          class_count[c]).long()
    dst_intra = by_class[pos.clamp_(max=num_nodes - 1)]
    dst_any = torch.randint(num_nodes, (num_edges, ), generator=gen)
    dst = torch.where(intra, dst_intra, dst_any)

    edge_index = torch.stack([src, dst], dim=0)
    edge_index, _ = remove_self_loops(edge_index)
    edge_index = to_undirected(edge_index, num_nodes=num_nodes)
    edge_index = coalesce(edge_index, num_nodes=num_nodes)

    centroids = torch.randn(num_classes, num_features, generator=gen)
    x = feature_signal * centroids[y] + torch.randn(
        num_nodes, num_features, generator=gen)

    perm = torch.randperm(num_nodes, generator=gen)
    num_train = int(train_ratio * num_nodes)
    num_val = int(val_ratio * num_nodes)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    val_mask = torch.zeros(num_nodes, dtype=torch.bool)
    test_mask = torch.zeros(num_nodes, dtype=torch.bool)
    train_mask[perm[:num_train]] = True
    val_mask[perm[num_train:num_train + num_val]] = True
    test_mask[perm[num_train + num_val:]] = True

    return Data(x=x, y=y, edge_index=edge_index, train_mask=train_mask,
                val_mask=val_mask, test_mask=test_mask)


def _real(value, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (bool, str)) or not low <= number <= high or (
            math.isinf(number)):
        bounds = ('a finite number' if math.isinf(low) else
                  f'a number in [{low:g}, {high:g}]')
        raise ValueError(f"'{name}' must be {bounds} (got {value!r})")
    return number
