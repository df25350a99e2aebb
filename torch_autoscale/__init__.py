r"""Scalable GNN training with historical embeddings.

:obj:`torch_autoscale` trains message-passing GNNs on graphs far larger than
device memory (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_): the graph
is clustered, mini-batches are clusters plus their 1-hop halo, and every
out-of-batch neighbour's embedding is read from a per-layer history.
"""
import torch_autoscale.typing  # noqa: F401  (probes optional backends)
from torch_autoscale import (
    errors,
    history,
    loader,
    nn,
    ops,  # noqa: F401
    partition,
    segment,
    transforms,
    utils,
)
from torch_autoscale.checkpoint import load_checkpoint, save_checkpoint

__version__ = '0.1.0'

__all__ = [
    'errors',
    'history',
    'loader',
    'nn',
    'partition',
    'segment',
    'transforms',
    'utils',
    'ops',
    'save_checkpoint',
    'load_checkpoint',
    '__version__',
]
