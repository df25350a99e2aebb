import contextlib
import functools
import logging
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from torch_autoscale.errors import format_rows
from torch_autoscale.history import History, HistoryPlacement, HistoryStore
from torch_autoscale.loader import SubgraphBatch
from torch_autoscale.loader.node_order import PERMUTED
from torch_autoscale.nn.lipschitz import lipschitz_penalty

log = logging.getLogger(__name__)


def _find_batch(args: tuple, kwargs: dict) -> Optional[SubgraphBatch]:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, SubgraphBatch):
            return value
    return None


def _check_pushes(forward: Callable) -> Callable:
    r"""Wraps a subclass's :meth:`ScalableGNN.forward` so that a GAS call
    (one given a batch) that never reaches :meth:`ScalableGNN.push_and_pull`
    says so, instead of failing later with a shape error deep inside a
    sparse product (or training on stale zeros without a word)."""
    @functools.wraps(forward)
    def checked(self, *args, **kwargs):
        if not getattr(self, '_gas_call', False) or \
                'push_and_pull' in self.__dict__:
            # Full-batch, or 'push_and_pull' replaced on purpose.
            return forward(self, *args, **kwargs)
        self._forward_depth += 1  # super().forward() of a subclass.
        try:
            out = forward(self, *args, **kwargs)
        except Exception as e:
            if self._forward_depth == 1 and self._pushes == 0:
                raise RuntimeError(_no_push_message(self)) from e
            raise
        finally:
            self._forward_depth -= 1
        if self._forward_depth == 0 and self._pushes == 0:
            raise RuntimeError(_no_push_message(self))
        return out

    checked._checked = True
    return checked


def _no_push_message(model: 'ScalableGNN') -> str:
    return (f"'{model.__class__.__name__}.forward' was given a mini-batch but "
            f"never called 'self.push_and_pull(history, x, batch)': call it "
            f"on the output of every layer but the last (with the 'batch' "
            f"argument passed on), so that in-batch rows go to the history "
            f"and the halo's rows come back")


@contextlib.contextmanager
def _kept_running_stats(module: torch.nn.Module):
    # A checkpointed layer runs its forward twice in training; batch norm
    # would fold the same batch into its running statistics twice. Keep the
    # buffers of every batch norm as they were before the recomputation.
    saved = [(buf, buf.clone()) for m in module.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             for buf in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


class ScalableGNN(torch.nn.Module):
    r"""Base class of GNNs trained with historical embeddings
    (`GNNAutoScale <https://arxiv.org/abs/2106.05609>`_).

    A subclass builds its layers, then writes :meth:`forward` as a plain
    full-graph GNN that calls :meth:`push_and_pull` on the output of every
    layer but the last, handing over the :class:`SubgraphBatch` it received:

    .. code-block:: python

        class MyGCN(ScalableGNN):
            def __init__(self, num_nodes, in_channels, hidden_channels,
                         out_channels, num_layers):
                super().__init__(num_nodes, hidden_channels, num_layers)
                self.convs = ModuleList(...)

            def forward(self, x, adj_t, batch=None):
                # In a mini-batch, 'adj_t' has a row per in-batch node and
                # a column per node of 'x' (in-batch nodes, then the halo),
                # so bipartite convolutions take (sources, targets).
                for conv, history in zip(self.convs[:-1], self.histories):
                    x = conv((x, x[:adj_t.size(0)]), adj_t).relu()
                    x = self.push_and_pull(history, x, batch)
                return self.convs[-1](x, adj_t)

            def forward_layer(self, layer, x, adj_t, state):
                x = self.convs[layer](x, adj_t)
                return x.relu() if layer < self.num_layers - 1 else x

    Without a batch, :meth:`forward` is ordinary full-batch message passing
    and histories are bypassed. With a batch, layer :math:`\ell` pushes the
    fresh embeddings of the in-batch nodes to its history and pulls the
    (stale) embeddings of the halo from it:

    .. math::
        \mathbf{h}^{(\ell+1)}_v = f\left(\mathbf{h}^{(\ell)}_v,
        \{\mathbf{h}^{(\ell)}_w : w \in \mathcal{N}(v) \cap \mathcal{B}\}
        \cup \{\bar{\mathbf{h}}^{(\ell)}_w : w \in \mathcal{N}(v)
        \setminus \mathcal{B}\}\right)

    With :obj:`pool_size` and :obj:`buffer_size` set and the model on a GPU,
    the pulls of all histories start on side streams before :meth:`forward`
    runs (a forward pre-hook), and pushes are synchronized when it returns (a
    forward hook); :meth:`push_and_pull` must then be called once per
    history, in order. :class:`torch.nn.Module` hooks keep working.

    :meth:`mini_inference` computes exact outputs for all nodes layer by
    layer with :meth:`forward_layer`, which subclasses implement.

    Args:
        num_nodes (int): The number of nodes of the graph (history rows).
        hidden_channels (int or list of int): The output width of every layer
            that owns a history, either one for all or a list of
            :obj:`num_layers - 1` widths.
        num_layers (int): The number of message-passing layers; the model owns
            :obj:`num_layers - 1` histories.
        pool_size (int, optional): The number of concurrent history transfers
            on a GPU. (default: :obj:`None`, synchronous transfers)
        buffer_size (int, optional): The largest number of history rows one
            transfer reads (the largest halo). Required with
            :obj:`pool_size`. (default: :obj:`None`)
        history_device (torch.device or str, optional): The device of the
            histories stored on a device (see :obj:`history_storage`).
            (default: :obj:`None`)
        history_dtype (torch.dtype or list of torch.dtype, optional): The
            storage dtype of the histories, either one for all or a list of
            :obj:`num_layers - 1` dtypes. (default: :obj:`None`, the default
            dtype)
        history_storage (str or list of str, optional): Where the histories
            live, :obj:`"device"`, :obj:`"host"` or :obj:`"disk"` (see
            :class:`~torch_autoscale.history.History`), either one for all or
            a list of :obj:`num_layers - 1` tiers. (default: :obj:`None`,
            on :obj:`history_device` if it is given and not the CPU, in host
            memory otherwise)
        history_dir (str, optional): The folder of the files of
            :obj:`"disk"` histories. (default: :obj:`None`,
            :func:`tempfile.gettempdir`)
        reg_weight (float, optional): The weight of the Lipschitz
            regularizer (see :func:`~torch_autoscale.nn.lipschitz_penalty`)
            collected by :meth:`lipschitz` in training mode and exposed as
            :attr:`reg_loss`. (default: :obj:`0.0`)
        reg_std (float, optional): The noise standard deviation of the
            Lipschitz regularizer. (default: :obj:`0.1`)
        recompute (list of bool, optional): For every layer, whether its
            activations are recomputed in the backward pass instead of kept
            (activation checkpointing through :meth:`run_layer`; models
            with :attr:`supports_recompute`). Trades an extra forward pass
            of the layer for its activation memory, as planned by
            :func:`torch_autoscale.plan.plan`. (default: :obj:`None`, keep
            all)
        placement (torch_autoscale.history.HistoryPlacement, optional):
            Where every history lives, *e.g.*, from the planner
            (:obj:`**plan.model_kwargs()` passes it with :obj:`recompute`);
            :obj:`history_storage`, :obj:`history_dtype`,
            :obj:`history_device` and :obj:`history_dir` must then be left
            unset. (default: :obj:`None`)
        history_factory (callable, optional): Builds the history of every
            layer instead of :class:`~torch_autoscale.history.History`:
            called as :obj:`history_factory(layer, num_nodes, channels,
            dtype)`, it returns a :class:`~torch_autoscale.history.History`
            (or a subclass), *e.g.*, the tables shared across processes of
            :func:`torch_autoscale.distributed.history_factory`. The factory
            decides where tables live, so :obj:`history_device`,
            :obj:`history_storage` and :obj:`history_dir` must be left
            unset. (default: :obj:`None`)
    """
    #: Whether the model accepts node features as a :obj:`torch.sparse_csr`
    #: matrix (its first operation on them is a linear layer).
    supports_sparse_input: bool = False
    #: Whether the model runs its layers through :meth:`run_layer`, so that
    #: :obj:`recompute` applies.
    supports_recompute: bool = False
    #: Whether the model propagates with an :obj:`adj_t` normalized
    #: beforehand (*e.g.*, by
    #: :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`) rather than
    #: normalizing itself; the first forward pass warns if every edge
    #: weight is one.
    expects_normalized_adj: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get('forward')
        if forward is not None and not getattr(forward, '_checked', False):
            cls.forward = _check_pushes(forward)

    def __init__(self, num_nodes: int,
                 hidden_channels: Union[int, Sequence[int]], num_layers: int,
                 pool_size: Optional[int] = None,
                 buffer_size: Optional[int] = None,
                 history_device: Optional[Union[str, torch.device]] = None,
                 history_dtype: Optional[Union[
                     torch.dtype, Sequence[Optional[torch.dtype]]]] = None,
                 reg_weight: float = 0.0, reg_std: float = 0.1,
                 history_storage: Optional[Union[
                     str, Sequence[Optional[str]]]] = None,
                 history_dir: Optional[str] = None,
                 recompute: Optional[Sequence[bool]] = None,
                 placement: Optional[HistoryPlacement] = None,
                 history_factory: Optional[Callable[..., History]] = None):
        super().__init__()
        if reg_weight < 0 or reg_std < 0:
            raise ValueError(f"'reg_weight' and 'reg_std' must be "
                             f"non-negative (got {reg_weight}, {reg_std})")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive integer (got "
                             f"{num_layers!r})")
        if isinstance(hidden_channels, int):
            widths = [hidden_channels] * (num_layers - 1)
        else:
            widths = [int(c) for c in hidden_channels]
            if len(widths) != num_layers - 1:
                raise ValueError(
                    f"'hidden_channels' lists {len(widths)} widths but a "
                    f"{num_layers}-layer model owns {num_layers - 1} "
                    f"histories; give one width per history")

        self.num_nodes = num_nodes
        self.num_layers = num_layers
        #: The history tables (a :class:`~torch_autoscale.history.
        #: HistoryStore`, one table per layer but the last).
        self.histories = HistoryStore.build(
            num_nodes, widths, placement=placement, storage=history_storage,
            dtype=history_dtype, device=history_device,
            directory=history_dir, pool_size=pool_size,
            buffer_size=buffer_size, factory=history_factory,
            prefix='history_')
        self.reg_weight = reg_weight
        self.reg_std = reg_std
        if recompute is None:
            recompute = [False] * num_layers
        recompute = [bool(r) for r in recompute]
        if len(recompute) != num_layers:
            raise ValueError(f"'recompute' lists {len(recompute)} flags but "
                             f"the model has {num_layers} layers; give one "
                             f"flag per layer")
        if any(recompute) and not self.supports_recompute:
            raise ValueError(f"'{self.__class__.__name__}' cannot recompute "
                             f"layers (it does not run them through "
                             f"'run_layer'); pass 'recompute=None'")
        self.recompute: List[bool] = recompute
        self._reg_terms: List[Tensor] = []
        self._reg_warned = False
        self._norm_checked = False
        self._pushes = 0
        self._gas_call = False
        self._forward_depth = 0
        self.register_forward_pre_hook(self._gas_pre_hook, with_kwargs=True)
        self.register_forward_hook(self._gas_post_hook, with_kwargs=True)

    @property
    def emb_device(self) -> torch.device:
        r"""The device the model computes on."""
        if len(self.histories) > 0:
            return self.histories.device
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device('cpu')

    def history_bytes(self) -> int:
        r"""The total size of all history tables in bytes, whatever their
        storage tier."""
        return self.histories.nbytes

    def reset_parameters(self):
        r"""Resets all histories (subclasses also reset their layers)."""
        self.histories.reset_parameters()

    @property
    def reg_modules(self) -> List[torch.nn.Module]:
        r"""The modules whose parameters get weight decay in
        :meth:`param_groups` (default: every layer)."""
        return [
            m for name, m in self.named_children()
            if name != 'histories'
        ]

    @property
    def nonreg_modules(self) -> List[torch.nn.Module]:
        r"""The modules whose parameters get :obj:`nonreg_weight_decay` in
        :meth:`param_groups` (default: none)."""
        return []

    def param_groups(self, weight_decay: float,
                     nonreg_weight_decay: float = 0.0) -> List[Dict[str, Any]]:
        r"""Optimizer parameter groups: :obj:`weight_decay` on the parameters
        of :attr:`reg_modules`, :obj:`nonreg_weight_decay` on those of
        :attr:`nonreg_modules` (the split of the GNNAutoScale reference
        configurations), *e.g.*,
        :obj:`torch.optim.Adam(model.param_groups(5e-4), lr=0.01)`.
        Parameters in both lists get :obj:`nonreg_weight_decay`
        (:attr:`nonreg_modules` may name submodules of
        :attr:`reg_modules`); parameters registered on the model itself
        (not in a submodule) join the :obj:`weight_decay` group.

        Args:
            weight_decay (float): The weight decay of :attr:`reg_modules`.
            nonreg_weight_decay (float, optional): The weight decay of
                :attr:`nonreg_modules`. (default: :obj:`0.0`)

        Raises:
            ValueError: If a parameter of a submodule belongs to neither
                list (no group would train it).
        """
        def ids(modules: List[torch.nn.Module]) -> set:
            return {id(p) for m in modules for p in m.parameters()}

        # 'nonreg_modules' may carve submodules out of 'reg_modules' (the
        # default, every child, includes them).
        nonreg = ids(self.nonreg_modules)
        reg = ids(self.reg_modules) - nonreg
        reg |= {id(p) for p in self.parameters(recurse=False)} - nonreg
        name = self.__class__.__name__
        neither = [n for n, p in self.named_parameters()
                   if id(p) not in reg and id(p) not in nonreg]
        if neither:
            raise ValueError(
                f"the parameters {neither[:5]} of '{name}' are in neither "
                f"'reg_modules' nor 'nonreg_modules', so no parameter group "
                f"would train them; list their modules in one of the two")
        groups = [
            dict(params=[p for p in self.parameters() if id(p) in reg],
                 weight_decay=weight_decay),
            dict(params=[p for p in self.parameters() if id(p) in nonreg],
                 weight_decay=nonreg_weight_decay),
        ]
        return [g for g in groups if len(g['params']) > 0]

    def _check_input(self, x: Any) -> None:
        if (isinstance(x, Tensor) and x.layout == torch.sparse_csr
                and not self.supports_sparse_input):
            raise ValueError(
                f"'{self.__class__.__name__}' takes dense node features only "
                f"(got a torch.sparse_csr 'x'); pass 'x.to_dense()'")

    def _check_call(self, args: tuple, kwargs: dict,
                    batch: Optional[SubgraphBatch]) -> Optional[tuple]:
        r"""Catches the common mistakes of a :meth:`forward` call with a
        message that says what to do; returns new :obj:`(args, kwargs)`
        where :obj:`adj_t` was converted."""
        name = self.__class__.__name__
        x = args[0] if len(args) > 0 else kwargs.get('x')
        in_args = len(args) > 1
        adj_t = args[1] if in_args else kwargs.get('adj_t')
        if isinstance(x, SubgraphBatch) or isinstance(adj_t, SubgraphBatch):
            raise TypeError(
                f"'{name}' takes 'x', 'adj_t' and the batch, not a "
                f"SubgraphBatch in place of a tensor; call "
                f"model(batch.data.x, batch.data.adj_t, batch)")
        replaced = None
        if type(adj_t).__name__ == 'SparseTensor' and hasattr(
                adj_t, 'to_torch_sparse_csr_tensor'):
            # A torch_sparse.SparseTensor: the hot path multiplies with
            # PyTorch's own CSR tensor.
            adj_t = adj_t.to_torch_sparse_csr_tensor()
            if in_args:
                replaced = (args[:1] + (adj_t, ) + args[2:], kwargs)
            else:
                replaced = (args, dict(kwargs, adj_t=adj_t))
        if isinstance(adj_t, Tensor) and adj_t.layout == torch.strided \
                and adj_t.dim() == 2 and adj_t.size(0) == 2 \
                and not adj_t.is_floating_point():
            raise ValueError(
                f"'{name}' got an 'edge_index' ([2, {adj_t.size(1)}] "
                f"integer tensor) where it expects 'adj_t', a sparse "
                f"adjacency (rows are targets); build it once with "
                f"'data.adj_t = torch_autoscale.utils.csr_adj_t("
                f"data.edge_index, data.num_nodes)' before partitioning, "
                f"and the loaders slice it per mini-batch")
        if not isinstance(x, Tensor) or not isinstance(adj_t, Tensor):
            return replaced
        in_channels = getattr(self, 'in_channels', None)
        if isinstance(in_channels, int) and in_channels > 0 and \
                x.dim() == 2 and x.size(1) != in_channels:
            raise ValueError(
                f"'x' has {x.size(1)} features but '{name}' was built with "
                f"in_channels={in_channels}; build it with "
                f"'data.num_features'")
        if batch is not None:
            if batch.n_id.numel() > 0 and \
                    int(batch.n_id.max()) >= self.num_nodes:
                raise ValueError(
                    f"'{name}' was built for num_nodes={self.num_nodes} but "
                    f"the mini-batch holds node {int(batch.n_id.max())}; "
                    f"build the model with the graph's 'data.num_nodes'")
            if x.size(0) != batch.n_id.numel():
                raise ValueError(
                    f"'x' has {x.size(0)} rows but the mini-batch has "
                    f"{batch.n_id.numel()} nodes (in-batch and halo); pass "
                    f"the batch's own features 'batch.data.x'")
        elif adj_t.dim() == 2 and adj_t.size(0) != adj_t.size(1) and \
                x.size(0) == adj_t.size(1) and x.size(0) < self.num_nodes:
            raise ValueError(
                f"'{name}' got a mini-batch ('adj_t' of shape "
                f"{list(adj_t.shape)}) without its batch, so it would run "
                f"full-batch on part of the graph; call "
                f"model(batch.data.x, batch.data.adj_t, batch)")
        if self.expects_normalized_adj and not self._norm_checked:
            self._norm_checked = True
            if adj_t.layout == torch.sparse_csr:
                values = adj_t.values()
                if values.numel() > 0 and bool((values == 1).all()):
                    warnings.warn(
                        f"'{name}' propagates with 'adj_t' as given, but "
                        f"every edge weight of 'adj_t' is 1: it looks "
                        f"unnormalized (accuracy suffers, e.g. Cora 74.8 "
                        f"against 82.3). Normalize it on the whole graph "
                        f"before partitioning: 'data.adj_t, _ = torch_"
                        f"geometric.nn.conv.gcn_conv.gcn_norm(data.adj_t)'",
                        UserWarning, stacklevel=3)
        return replaced

    def _gas_pre_hook(self, module, args: tuple, kwargs: dict):
        self._reg_terms = []
        self._check_input(args[0] if len(args) > 0 else kwargs.get('x'))
        batch = _find_batch(args, kwargs)
        replaced = self._check_call(args, kwargs, batch)
        args, kwargs = replaced if replaced is not None else (args, kwargs)
        x = args[0] if len(args) > 0 else kwargs.get('x')
        cast = self._in_model_dtype(x)
        if cast is not x:  # E.g. float16 features of a graph store.
            replaced = ((cast, ) + args[1:], kwargs) if len(args) > 0 else (
                args, dict(kwargs, x=cast))
        self._pushes = 0
        self._gas_call = batch is not None and len(self.histories) > 0
        self.histories.begin(batch)
        return replaced

    def _in_model_dtype(self, x: Any) -> Any:
        r"""Dense floating point features of another precision than the
        model's parameters (*e.g.*, :obj:`float16` features kept on disk)
        cast to the parameters' dtype; anything else as it is."""
        if not isinstance(x, Tensor) or x.layout != torch.strided or \
                not x.is_floating_point():
            return x
        param = next((p for p in self.parameters()
                      if p.is_floating_point()), None)
        dtype = param.dtype if param is not None else \
            torch.get_default_dtype()
        return x if x.dtype == dtype else x.to(dtype)

    def _gas_post_hook(self, module, args: tuple, kwargs: dict, output: Any):
        if (self.training and self.reg_weight > 0 and not self._reg_terms
                and not self._reg_warned):
            self._reg_warned = True
            warnings.warn(
                f"'{self.__class__.__name__}' was given reg_weight="
                f"{self.reg_weight} but its forward() records no Lipschitz "
                f"penalty, so 'reg_loss' stays zero; call "
                f"'self.lipschitz(update_fn, h)' in forward() for the layers "
                f"to regularize", stacklevel=2)
        self.histories.end()
        return None

    def lipschitz(self, module: Any, h: Tensor,
                  out: Optional[Tensor] = None) -> None:
        r"""Records the Lipschitz penalty of :obj:`module` at inputs
        :obj:`h` (see :func:`~torch_autoscale.nn.lipschitz_penalty`) when
        training with :obj:`reg_weight > 0`; a no-op otherwise. Models call
        it on the update function of every layer whose output has a
        history.

        Args:
            module (callable): The layer's update function.
            h (torch.Tensor): Its inputs.
            out (torch.Tensor, optional): :obj:`module(h)`, if already
                computed. (default: :obj:`None`)
        """
        if self.training and self.reg_weight > 0:
            self._reg_terms.append(
                lipschitz_penalty(module, h, self.reg_std, out=out))

    @property
    def reg_loss(self) -> Tensor:
        r"""The weighted mean of the Lipschitz penalties recorded during the
        last forward pass (zero without any); add it to the training loss."""
        if len(self._reg_terms) == 0:
            return torch.zeros((), device=self.emb_device)
        return self.reg_weight * torch.stack(self._reg_terms).mean()

    def push_and_pull(self, history: History, x: Tensor,
                      batch: Optional[SubgraphBatch] = None) -> Tensor:
        r"""Pushes the in-batch rows of :obj:`x` to :obj:`history` and returns
        them followed by the halo's historical embeddings.

        Without :obj:`batch` (full-batch), returns :obj:`x` unchanged.

        Args:
            history (History): The history of the layer that produced
                :obj:`x`.
            x (torch.Tensor): The layer's output; its first
                :obj:`batch.batch_size` rows are the in-batch nodes.
            batch (SubgraphBatch, optional): The mini-batch.
                (default: :obj:`None`)
        """
        if batch is None:
            return x
        self._pushes += 1
        return self.histories.push_and_pull(history, x, batch)

    def run_layer(self, layer: int, fn: Any, *args: Any) -> Any:
        r"""Returns :obj:`fn(*args)`, the computation of layer
        :obj:`layer`; in training with :obj:`recompute[layer]` set, through
        :func:`torch.utils.checkpoint.checkpoint`, so that only its inputs
        are kept for the backward pass and the rest is recomputed. The
        recomputation has no side effects: random draws such as dropout masks
        repeat exactly, and batch-norm running statistics are updated once,
        by the forward pass (the recomputation puts them back)."""
        if (self.recompute[layer] and self.training
                and torch.is_grad_enabled()):
            return torch.utils.checkpoint.checkpoint(
                fn, *args, use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(),
                                    _kept_running_stats(self)))
        return fn(*args)

    def forward_layer(self, layer: int, x: Tensor, adj_t: Tensor,
                      state: Dict[str, Any]) -> Tensor:
        r"""Computes layer :obj:`layer` for the rows of :obj:`adj_t`, given
        the inputs :obj:`x` of all its columns, in evaluation mode. Used by
        :meth:`mini_inference`.

        Args:
            layer (int): The layer index, from :obj:`0` to
                :obj:`num_layers - 1`.
            x (torch.Tensor): The layer's input for every column of
                :obj:`adj_t` (in-batch nodes first).
            adj_t (torch.Tensor): The mini-batch adjacency.
            state (dict): A dictionary kept per mini-batch across layers,
                *e.g.*, for the input of an initial residual.
        """
        raise NotImplementedError(
            f"'{self.__class__.__name__}' does not implement forward_layer(), "
            f"which mini_inference() needs")

    @torch.no_grad()
    def _check_coverage(self, in_batch: List[Tensor],
                        nodes: Optional[Tensor]) -> None:
        r"""Checks that the in-batch nodes of the mini-batches,
        :obj:`in_batch`, are :obj:`nodes` (every node if :obj:`None`), each
        exactly once."""
        seen = torch.cat([n_id.cpu() for n_id in in_batch])
        if seen.numel() > 0 and (int(seen.min()) < 0
                                 or int(seen.max()) >= self.num_nodes):
            raise ValueError(
                f"'loader' holds nodes outside [0, {self.num_nodes}); build "
                f"it from the graph this model was created for "
                f"(num_nodes={self.num_nodes})")
        times = torch.bincount(seen, minlength=self.num_nodes)
        expected = torch.ones(self.num_nodes, dtype=torch.long)
        what = 'every node'
        if nodes is not None:
            if not isinstance(nodes, Tensor) or nodes.dtype != torch.long \
                    or nodes.dim() != 1:
                raise ValueError("'nodes' must be a one-dimensional int64 "
                                 "tensor of node ids")
            if nodes.numel() > 0 and (int(nodes.min()) < 0 or int(
                    nodes.max()) >= self.num_nodes):
                raise ValueError(f"'nodes' holds ids outside [0, "
                                 f"{self.num_nodes}) of this model's graph")
            expected = torch.zeros(self.num_nodes, dtype=torch.long)
            expected[nodes.cpu()] = 1
            what = f"the {int(expected.sum())} nodes of 'nodes'"
        for bad, how in ((times < expected, 'in no mini-batch'),
                         (times > expected, 'in more than one mini-batch '
                          'or not in \'nodes\'')):
            ids = bad.nonzero().view(-1)
            if ids.numel() > 0:
                raise ValueError(
                    f"'loader' must cover {what} exactly once as in-batch "
                    f"nodes, but {ids.numel()} node(s) "
                    f"{format_rows(ids[:10].tolist())} are "
                    f"{how}; use an EvalSubgraphLoader over every cluster "
                    f"of the partition")

    def mini_inference(self, loader: Any, progress: bool = True,
                       nodes: Optional[Tensor] = None,
                       out: Optional[Tensor] = None) -> Tensor:
        r"""Exact layer-wise inference for all nodes.

        Layer :math:`\ell` runs over all mini-batches of :obj:`loader` before
        layer :math:`\ell+1`, reading its inputs from history :math:`\ell-1`
        and writing its outputs to history :math:`\ell`. Every history is then
        exact and fresh, and the output equals full-batch :meth:`forward` in
        evaluation mode, up to floating point error.

        Args:
            loader (EvalSubgraphLoader): Mini-batches that together cover every
                node exactly once (built on demand at every layer if it was
                created with :obj:`precompute=False`).
            progress (bool, optional): Whether to show a progress bar.
                (default: :obj:`True`)
            nodes (torch.Tensor, optional): The nodes :obj:`loader` covers,
                when it covers only some on purpose (*e.g.*, one process's
                clusters); the other rows of the output are zero.
                (default: :obj:`None`, every node)
            out (torch.Tensor, optional): A CPU tensor of shape
                :obj:`[num_nodes, out_channels]` to write the output rows
                into instead of a new tensor, *e.g.*, a memory-mapped array
                of a :class:`~torch_autoscale.store.GraphStoreWriter` when
                the outputs of a graph larger than memory should go to disk;
                it is returned. (default: :obj:`None`)

        Returns:
            The output for every node, in the loader's node order. Over the
            :meth:`~torch_autoscale.loader.PartitionedData.eval_loader` of a
            :class:`~torch_autoscale.loader.PartitionedData`, a
            :class:`~torch_autoscale.loader.NodeOrderTensor` that raises
            :class:`~torch_autoscale.errors.NodeOrderError` when combined
            with the input graph's masks or labels (the original order).

        Raises:
            ValueError: If the in-batch nodes of :obj:`loader` miss a node
                (of :obj:`nodes`), hold one twice, or hold one outside the
                graph, naming the nodes: a missed node's output would be
                undefined.
        """
        was_training = self.training
        self.eval()
        device = self.emb_device
        if hasattr(loader, 'batch_sequence'):  # An EvalSubgraphLoader.
            batches = loader.batch_sequence()
        else:
            batches = list(loader)
        if len(batches) == 0:
            raise ValueError("'loader' yields no mini-batches")
        if isinstance(batches, list):
            in_batch = [b.n_id[:b.batch_size] for b in batches]
        else:  # Built on demand: the in-batch nodes are the clusters'.
            ptr = loader.ptr
            in_batch = [torch.cat([torch.arange(int(ptr[c]), int(ptr[c + 1]))
                                   for c in group]) for group in loader.groups]
        self._check_coverage(in_batch, nodes)
        states: List[Dict[str, Any]] = [{} for _ in range(len(batches))]
        store = self.histories
        if out is not None and (not isinstance(out, Tensor) or out.dim() != 2
                                or out.size(0) != self.num_nodes
                                or out.device.type != 'cpu'):
            raise ValueError(f"'out' must be a CPU tensor of shape "
                             f"[num_nodes={self.num_nodes}, out_channels]")

        pbar = tqdm(total=self.num_layers * len(batches),
                    desc='Layer-wise inference', disable=not progress,
                    leave=False)
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            if not isinstance(batches, list):  # Built on demand: layers
                # after the first read histories, not node features.
                batches = loader.batch_sequence(
                    node_attrs=['x'] if layer == 0 else [])
            if layer == 0:
                inputs = (self._in_model_dtype(
                    b.data.x.to(device, non_blocking=True)) for b in batches)
            else:
                inputs = store.inference_inputs(layer - 1, batches)
            for i, (batch, x) in enumerate(zip(batches, inputs)):
                if layer == 0:
                    self._check_input(x)
                adj_t = batch.data.adj_t.to(device, non_blocking=True)
                h = self.forward_layer(layer, x, adj_t, states[i])
                h = h[:batch.batch_size]
                if last:
                    if out is None:
                        out = torch.zeros(self.num_nodes, h.size(-1),
                                          dtype=h.dtype, device='cpu')
                    elif out.size(1) != h.size(-1):
                        raise ValueError(
                            f"'out' has {out.size(1)} columns but the model "
                            f"outputs {h.size(-1)}")
                    out[batch.n_id[:batch.batch_size]] = h.cpu().to(
                        out.dtype)
                else:
                    store.inference_push(layer, h, batch)
                pbar.update(1)
            if not last:  # Other processes' pushes too, if shared.
                store.inference_end(layer)
        pbar.close()
        self.train(was_training)
        node_order = getattr(loader, 'node_order', None)
        if node_order is not None:  # From a PartitionedData.
            out = node_order.tag(out, PERMUTED)
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_nodes={self.num_nodes}, '
                f'num_layers={self.num_layers})')
