r"""Helpers for the test suite and the benchmarks (the pattern of
:mod:`torch_geometric.testing`), one concern per module:

* :mod:`~torch_autoscale.testing.decorators`: skip or parametrize tests by
  the hardware and the native extension present (:mod:`pytest` is imported
  only when a decorator is applied);
* :mod:`~torch_autoscale.testing.datasets`: where unpacked dataset roots
  are found;
* :mod:`~torch_autoscale.testing.graphs`: clustered, random and
  sparse-feature graphs;
* :mod:`~torch_autoscale.testing.asserts`: checks that GAS equals the
  full-batch forward pass;
* :mod:`~torch_autoscale.testing.training`: short training loops;
* :mod:`~torch_autoscale.testing.scripts`: importing examples and
  benchmarks as modules.
"""
from .asserts import (
    assert_exact_histories,
    assert_mini_inference_exact,
    assert_one_cluster_exact,
    assert_param_groups_cover,
    assert_sparse_input_exact,
    assert_stale_histories_differ,
    param_ids,
)
from .datasets import DATA_ENV, data_root
from .decorators import devices, onlyCUDA, onlyCUDAOps, onlyNative, withCUDA
from .graphs import clustered_graph, random_graphs, sparse_features
from .scripts import load_script
from .training import fit_norm_statistics, train_gas_epoch, train_losses

__all__ = [
    'onlyCUDA',
    'onlyNative',
    'onlyCUDAOps',
    'withCUDA',
    'devices',
    'DATA_ENV',
    'data_root',
    'clustered_graph',
    'random_graphs',
    'sparse_features',
    'assert_mini_inference_exact',
    'assert_one_cluster_exact',
    'assert_stale_histories_differ',
    'assert_exact_histories',
    'assert_sparse_input_exact',
    'assert_param_groups_cover',
    'param_ids',
    'fit_norm_statistics',
    'train_losses',
    'train_gas_epoch',
    'load_script',
]
