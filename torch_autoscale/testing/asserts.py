r"""The checks that every :class:`~torch_autoscale.nn.ScalableGNN` model
test shares, comparing GAS with the full-batch forward pass: exact
layer-wise inference, exact GAS forward passes with fresh histories, visible
halos while histories are stale, sparse input features, and parameter-group
coverage. Each raises an :class:`AssertionError` when the check fails."""
from typing import Any, Dict, Iterable, Sequence, Set

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale.loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)
from torch_autoscale.nn import ScalableGNN

from .graphs import sparse_features


def assert_mini_inference_exact(model: ScalableGNN, data: Data, ptr: Tensor,
                                batch_size: int = 2,
                                atol: float = 1e-5) -> Tensor:
    r"""Asserts that layer-wise :meth:`~ScalableGNN.mini_inference` over
    :obj:`batch_size` clusters per batch equals the full-batch forward pass in
    evaluation mode (to which :obj:`model` is switched).

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        batch_size (int, optional): Clusters per inference batch.
            (default: :obj:`2`)
        atol (float, optional): The absolute tolerance. (default: :obj:`1e-5`)

    Returns:
        The full-batch output.
    """
    model.eval()
    full = model(data.x, data.adj_t)
    loader = EvalSubgraphLoader(data, ptr, batch_size=batch_size)
    out = model.mini_inference(loader, progress=False)
    assert torch.allclose(out, full, atol=atol)
    return full


def assert_one_cluster_exact(model: ScalableGNN, data: Data,
                             atol: float = 1e-5) -> Tensor:
    r"""Asserts that a GAS forward pass over one cluster covering the whole
    graph (no halo) equals the full-batch forward pass in evaluation mode (to
    which :obj:`model` is switched).

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph.
        atol (float, optional): The absolute tolerance. (default: :obj:`1e-5`)

    Returns:
        The full-batch output.
    """
    model.eval()
    full = model(data.x, data.adj_t)
    single = torch.tensor([0, data.num_nodes])
    batch = next(iter(SubgraphLoader(data, single, batch_size=1)))
    assert batch.n_id.numel() == batch.batch_size == data.num_nodes
    out = model(batch.data.x, batch.data.adj_t, batch)
    assert torch.allclose(out, full, atol=atol)
    return full


def assert_stale_histories_differ(model: ScalableGNN, data: Data,
                                  ptr: Tensor, batch_size: int = 2,
                                  atol: float = 1e-3) -> SubgraphBatch:
    r"""Asserts that, while the histories are still zero (stale), a GAS
    forward pass on the first batch of :obj:`batch_size` clusters differs
    from the full-batch rows of its in-batch nodes, *i.e.* that the halo is
    visible in the output. Switches :obj:`model` to evaluation mode.

    Args:
        model (ScalableGNN): A model whose histories were never written.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        batch_size (int, optional): Clusters per batch. (default: :obj:`2`)
        atol (float, optional): The absolute tolerance that the outputs must
            exceed somewhere. (default: :obj:`1e-3`)

    Returns:
        The batch.
    """
    model.eval()
    full = model(data.x, data.adj_t)
    batch = next(iter(SubgraphLoader(data, ptr, batch_size=batch_size)))
    out = model(batch.data.x, batch.data.adj_t, batch)
    assert not torch.allclose(out, full[batch.n_id[:batch.batch_size]],
                              atol=atol)
    return batch


def assert_exact_histories(model: ScalableGNN, data: Data, ptr: Tensor,
                           batch_size: int = 2, atol: float = 1e-5,
                           bipartite: Sequence[bool] = (True, )) -> None:
    r"""Asserts that, once :meth:`~ScalableGNN.mini_inference` has made every
    history exact, GAS forward passes on shuffled batches of
    :obj:`batch_size` clusters (each with a non-empty halo) equal the
    full-batch rows of their in-batch nodes. Switches :obj:`model` to
    evaluation mode.

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        batch_size (int, optional): Clusters per batch. (default: :obj:`2`)
        atol (float, optional): The absolute tolerance. (default: :obj:`1e-5`)
        bipartite (Sequence[bool], optional): The :obj:`bipartite` settings of
            the loaders to run. A bipartite batch must output exactly the
            in-batch rows; a square one (empty halo rows) is compared on its
            first :obj:`batch.batch_size` rows. (default: :obj:`(True,)`)
    """
    model.eval()
    full = model(data.x, data.adj_t)
    model.mini_inference(EvalSubgraphLoader(data, ptr), progress=False)
    for bip in bipartite:
        for batch in SubgraphLoader(data, ptr, batch_size=batch_size,
                                    shuffle=True, bipartite=bip):
            assert batch.n_id.numel() > batch.batch_size  # there is a halo
            out = model(batch.data.x, batch.data.adj_t, batch)
            if not bip:  # square adj_t: drop the (empty) halo rows
                out = out[:batch.batch_size]
            expected = full[batch.n_id[:batch.batch_size]]
            assert torch.allclose(out, expected, atol=atol)


def assert_sparse_input_exact(model: ScalableGNN, data: Data, ptr: Tensor,
                              batch_size: int = 2,
                              atol: float = 1e-5) -> None:
    r"""Asserts that :obj:`model` gives the same outputs for sparse CSR node
    features as for the same features dense: full-batch, with GAS over one
    cluster, with :meth:`~ScalableGNN.mini_inference`; and that a GAS
    training step on sparse features runs and yields finite gradients.

    Args:
        model (ScalableGNN): A model with :obj:`supports_sparse_input`.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        batch_size (int, optional): Clusters per batch. (default: :obj:`2`)
        atol (float, optional): The absolute tolerance. (default: :obj:`1e-5`)
    """
    dense, sparse = sparse_features(data)
    full = assert_mini_inference_exact(model, dense, ptr, batch_size, atol)
    assert torch.allclose(model(sparse.x, sparse.adj_t), full, atol=atol)
    assert torch.allclose(assert_one_cluster_exact(model, sparse, atol), full,
                          atol=atol)
    loader = EvalSubgraphLoader(sparse, ptr, batch_size=batch_size)
    out = model.mini_inference(loader, progress=False)
    assert torch.allclose(out, full, atol=atol)

    model.train()
    batch = next(iter(SubgraphLoader(sparse, ptr, batch_size=batch_size)))
    assert batch.data.x.layout == torch.sparse_csr
    model.zero_grad()
    out = model(batch.data.x, batch.data.adj_t, batch)
    F.cross_entropy(out, batch.data.y[:batch.batch_size]).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > 0 and all(bool(g.isfinite().all()) for g in grads)
    model.eval()

    # Without dropout, the gradients on sparse features are those on dense
    # ones (the sparse backward pass multiplies with a cached transpose).
    dense_batch = next(iter(SubgraphLoader(dense, ptr,
                                           batch_size=batch_size)))
    grads = []
    for b in (batch, dense_batch):
        model.zero_grad()
        out = model(b.data.x, b.data.adj_t, b)
        F.cross_entropy(out, b.data.y[:b.batch_size]).backward()
        grads.append([p.grad.clone() for p in model.parameters()
                      if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for g_sparse, g_dense in zip(*grads):
        assert torch.allclose(g_sparse, g_dense, atol=atol)
    model.zero_grad()


def param_ids(params: Iterable[Tensor]) -> Set[int]:
    r"""The identities of :obj:`params`, to compare sets of parameters.

    Args:
        params (iterable): The parameters.
    """
    return {id(p) for p in params}


def assert_param_groups_cover(model: torch.nn.Module,
                              groups: Sequence[Dict[str, Any]]) -> None:
    r"""Asserts that the parameter groups :obj:`groups` (of
    :meth:`~ScalableGNN.param_groups`) hold every parameter of :obj:`model`
    exactly once.

    Args:
        model (torch.nn.Module): The model.
        groups ([dict]): The parameter groups, each with :obj:`"params"`.
    """
    ids = [id(p) for g in groups for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
