r"""Decorators and helpers for the test suite (the pattern of
:mod:`torch_geometric.testing.decorators`), and the checks that every
:class:`~torch_autoscale.nn.ScalableGNN` model test shares: a clustered
synthetic graph, exact layer-wise inference, exact GAS forward passes with
fresh histories, a training loop, and parameter-group coverage."""
import copy
import os
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

import torch_autoscale.typing
from torch_autoscale.loader import (
    EvalSubgraphLoader,
    SubgraphBatch,
    SubgraphLoader,
)
from torch_autoscale.nn import ScalableGNN
from torch_autoscale.partition import metis, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t, homophilous_sbm

DATA_ENV = 'TORCH_AUTOSCALE_DATA'


def onlyCUDA(func: Callable) -> Callable:
    r"""Skips the test unless a CUDA device is present."""
    return pytest.mark.skipif(not torch.cuda.is_available(),
                              reason='CUDA not available')(func)


def onlyNative(func: Callable) -> Callable:
    r"""Skips the test unless the native extension is loaded."""
    return pytest.mark.skipif(not torch_autoscale.typing.WITH_NATIVE,
                              reason='torch_autoscale._C not built')(func)


def onlyCUDAOps(func: Callable) -> Callable:
    r"""Skips the test unless the native CUDA kernels and a GPU are
    present."""
    return pytest.mark.skipif(
        not torch_autoscale.typing.WITH_CUDA_OPS,
        reason='native CUDA kernels or GPU not available')(func)


def devices() -> List[torch.device]:
    r"""The devices to parametrize a test with: CPU, plus CUDA if present."""
    out = [torch.device('cpu')]
    if torch.cuda.is_available():
        out.append(torch.device('cuda'))
    return out


def withCUDA(func: Callable) -> Callable:
    r"""Runs the test once per device in :func:`devices`, passing
    :obj:`device`."""
    return pytest.mark.parametrize('device', devices(),
                                   ids=lambda d: str(d))(func)


def data_root(*required: str) -> Optional[str]:
    r"""The folder of unpacked PyG dataset roots named by the
    :obj:`TORCH_AUTOSCALE_DATA` environment variable, if it holds all of
    :obj:`required` (relative paths); :obj:`None` otherwise."""
    root = os.environ.get(DATA_ENV)
    if not root or not os.path.isdir(root):
        return None
    if not all(os.path.exists(os.path.join(root, r)) for r in required):
        return None
    return root


def clustered_graph(num_nodes: int, num_parts: int, adj: str = 'raw',
                    seed: int = 0, **sbm_kwargs: Any) -> Tuple[Data, Tensor]:
    r"""A synthetic :func:`~torch_autoscale.utils.homophilous_sbm` graph,
    clustered with :func:`~torch_autoscale.partition.metis` and permuted so
    that every cluster is a contiguous range of nodes.

    Args:
        num_nodes (int): The number of nodes.
        num_parts (int): The number of clusters.
        adj (str, optional): The :obj:`adj_t` the graph carries: the plain
            CSR adjacency without self-loops (:obj:`"raw"`), or its symmetric
            normalization with self-loops (:obj:`"gcn_norm"`).
            (default: :obj:`"raw"`)
        seed (int, optional): The seed of the graph. (default: :obj:`0`)
        **sbm_kwargs (optional): Further arguments of
            :func:`~torch_autoscale.utils.homophilous_sbm`.

    Returns:
        The permuted graph and the cluster boundaries :obj:`ptr`.
    """
    if adj not in ('raw', 'gcn_norm'):
        raise ValueError(f"'adj' must be 'raw' or 'gcn_norm' (got {adj!r})")
    data = homophilous_sbm(num_nodes, seed=seed, **sbm_kwargs)
    data.adj_t = csr_adj_t(data.edge_index, num_nodes)
    if adj == 'gcn_norm':
        data.adj_t, _ = gcn_norm(data.adj_t)
    cluster = metis(data.edge_index, num_nodes, num_parts=num_parts)
    perm, ptr = sort_by_cluster(cluster, num_parts)
    return permute(data, perm), ptr


def random_graphs(num_graphs: int, min_nodes: int, max_nodes: int,
                  edges_per_node: int = 2, num_classes: int = 3,
                  x_scale: float = 1.0, seed: int = 0) -> List[Data]:
    r"""Small random undirected graphs with four node features and a graph
    label each, for the segment-training tests.

    Args:
        num_graphs (int): The number of graphs.
        min_nodes (int): The fewest nodes of a graph.
        max_nodes (int): One more than the most nodes of a graph.
        edges_per_node (int, optional): Random edges drawn per node before
            symmetrization. (default: :obj:`2`)
        num_classes (int, optional): Graph :obj:`i` gets label
            :obj:`i % num_classes`. (default: :obj:`3`)
        x_scale (float, optional): The standard deviation of the features.
            (default: :obj:`1.0`)
        seed (int, optional): The seed. (default: :obj:`0`)
    """
    from torch_geometric.utils import to_undirected
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        n = int(torch.randint(min_nodes, max_nodes, (1, ), generator=gen))
        edge_index = to_undirected(
            torch.randint(n, (2, edges_per_node * n), generator=gen),
            num_nodes=n)
        graphs.append(
            Data(x=x_scale * torch.randn(n, 4, generator=gen),
                 edge_index=edge_index, y=torch.tensor([i % num_classes]),
                 num_nodes=n))
    return graphs


def fit_norm_statistics(model: ScalableGNN, data: Data) -> ScalableGNN:
    r"""Runs one full-batch forward pass in training mode, so that batch-norm
    running statistics are non-trivial, and switches :obj:`model` to
    evaluation mode.

    Returns:
        The model.
    """
    model.train()
    model(data.x, data.adj_t)
    return model.eval()


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


def train_losses(model: ScalableGNN, data: Data, ptr: Tensor, epochs: int,
                 lr: float = 0.01, batch_size: int = 2,
                 mask: Optional[str] = None, params: Optional[Any] = None,
                 weight_decay: float = 0.0,
                 reg_loss: bool = False) -> List[float]:
    r"""Trains :obj:`model` with GAS and Adam for :obj:`epochs` epochs of
    shuffled batches of :obj:`batch_size` clusters, minimizing the
    cross-entropy of the in-batch nodes.

    Args:
        model (ScalableGNN): The model.
        data (torch_geometric.data.Data): The graph of
            :func:`clustered_graph`.
        ptr (torch.Tensor): Its cluster boundaries.
        epochs (int): The number of epochs.
        lr (float, optional): The learning rate. (default: :obj:`0.01`)
        batch_size (int, optional): Clusters per batch. (default: :obj:`2`)
        mask (str, optional): The node mask of :obj:`data` (such as
            :obj:`"train_mask"`) that selects the nodes of the loss; all
            in-batch nodes if :obj:`None`. (default: :obj:`None`)
        params (iterable, optional): The parameters or parameter groups to
            optimize, such as :meth:`~ScalableGNN.param_groups`; all of
            :obj:`model.parameters()` if :obj:`None`. (default: :obj:`None`)
        weight_decay (float, optional): Adam's default weight decay.
            (default: :obj:`0.0`)
        reg_loss (bool, optional): Whether to add :obj:`model.reg_loss` to
            the loss that is minimized (not to the one recorded).
            (default: :obj:`False`)

    Returns:
        The sum of the batch losses of every epoch.
    """
    params = model.parameters() if params is None else params
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    loader = SubgraphLoader(data, ptr, batch_size=batch_size, shuffle=True)
    losses = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for batch in loader:
            opt.zero_grad()
            out = model(batch.data.x, batch.data.adj_t, batch)
            y = batch.data.y[:batch.batch_size]
            if mask is not None:
                keep = getattr(batch.data, mask)[:batch.batch_size]
                out, y = out[keep], y[keep]
            loss = F.cross_entropy(out, y)
            (loss + model.reg_loss if reg_loss else loss).backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total)
    return losses


def param_ids(params: Iterable[Tensor]) -> Set[int]:
    r"""The identities of :obj:`params`, to compare sets of parameters."""
    return {id(p) for p in params}


def assert_param_groups_cover(model: torch.nn.Module,
                              groups: Sequence[Dict[str, Any]]) -> None:
    r"""Asserts that the parameter groups :obj:`groups` (of
    :meth:`~ScalableGNN.param_groups`) hold every parameter of :obj:`model`
    exactly once."""
    ids = [id(p) for g in groups for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def sparse_features(data: Data, density: float = 0.2,
                    seed: int = 0) -> Tuple[Data, Data]:
    r"""Zeroes most entries of :obj:`data.x` and returns two copies of the
    graph: one with these features dense, one with them as a
    :obj:`torch.sparse_csr` matrix.

    Args:
        data (torch_geometric.data.Data): The graph.
        density (float, optional): The fraction of entries kept.
            (default: :obj:`0.2`)
        seed (int, optional): The seed of the kept entries. (default: :obj:`0`)
    """
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(data.x.size(), generator=gen) < density
    dense, sparse = copy.copy(data), copy.copy(data)
    dense.x = data.x * keep
    sparse.x = dense.x.to_sparse_csr()
    return dense, sparse


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


def load_script(path: str, name: str) -> Any:
    r"""Imports a script (an example or a benchmark outside the package)
    as a module named :obj:`name`, with its folder on :obj:`sys.path` for
    the duration of the import (for its sibling modules)."""
    import importlib.util
    import sys
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def train_gas_epoch(model: ScalableGNN, optimizer: torch.optim.Optimizer,
                    loader: Iterable) -> List[float]:
    r"""One GAS training epoch with cross-entropy on the in-batch nodes;
    returns the loss of every step."""
    model.train()
    losses = []
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch.data.x, batch.data.adj_t, batch)
        loss = F.cross_entropy(out, batch.data.y[:batch.batch_size])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
