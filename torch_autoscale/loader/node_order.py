r"""Which node order a per-node tensor is in, so that outputs in the
permuted order of a :class:`~torch_autoscale.loader.PartitionedData` cannot
be compared with labels in the original order without a word."""
import copy
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils._pytree import tree_flatten

from torch_autoscale.errors import NodeOrderError

PERMUTED = 'permuted'
ORIGINAL = 'original'
ORDERS = (PERMUTED, ORIGINAL)

_FIX = {
    PERMUTED: ("map the output with 'pdata.to_original(out)' first, or use "
               "the masks and labels of 'pdata.data'"),
    ORIGINAL: ("compare it with tensors of the input graph, or map it back "
               "with 'pdata.to_permuted(...)'"),
}


class NodeOrder:
    r"""The two node orders of one
    :class:`~torch_autoscale.loader.PartitionedData`: the tensors known to be
    in each, and :meth:`tag`, which marks a tensor as being in one so that
    combining it with a known tensor of the other raises
    :class:`~torch_autoscale.errors.NodeOrderError`.

    Tensors are known by their storage, so views and slices of a known tensor
    (:obj:`data.y[:10]`) count as known too. Only weak references are held:
    a known tensor that is freed is forgotten, and nothing is kept alive.

    Args:
        name (str, optional): How the order is named in errors.
            (default: :obj:`"pdata"`)
    """
    def __init__(self, name: str = 'pdata'):
        self.name = name
        # Storage address -> (tensor, order); the live weak reference keeps
        # the address from being reused by an unrelated tensor.
        self._known: Dict[int, List[Tuple[weakref.ref, str]]] = {}

    def register(self, tensor: Tensor, order: str) -> None:
        r"""Records that :obj:`tensor` (and every view of it) is in
        :obj:`order` (:obj:`"permuted"` or :obj:`"original"`)."""
        _check_order(order)
        key = _storage_key(tensor)
        if key is None:
            return
        entries = [(ref, o) for ref, o in self._known.get(key, [])
                   if ref() is not None]
        entries.append((weakref.ref(tensor), order))
        self._known[key] = entries

    def order_of(self, tensor: Tensor) -> Optional[str]:
        r"""The order :obj:`tensor` is known to be in, or :obj:`None`."""
        if isinstance(tensor, NodeOrderTensor):
            return tensor._order if tensor._node_order is self else None
        key = _storage_key(tensor)
        if key is None:
            return None
        for ref, order in self._known.get(key, []):
            if ref() is not None:
                return order
        return None

    def tag(self, tensor: Tensor, order: str) -> 'NodeOrderTensor':
        r"""Returns :obj:`tensor` as a :class:`NodeOrderTensor` in
        :obj:`order` (the data are shared, not copied)."""
        _check_order(order)
        out = tensor.as_subclass(NodeOrderTensor)
        out._node_order = self
        out._order = order
        return out

    def __reduce__(self) -> Tuple[Callable, Tuple[str]]:
        return NodeOrder, (self.name, )  # The weak references stay behind.

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.name!r})'


class NodeOrderTensor(Tensor):
    r"""A :class:`torch.Tensor` that knows its node order: what
    :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference` returns over the
    evaluation loader of a :class:`~torch_autoscale.loader.PartitionedData`
    (the permuted order), and what
    :meth:`~torch_autoscale.loader.PartitionedData.to_original` returns (the
    original order).

    It behaves as a plain tensor, and everything computed from it
    (:obj:`out.argmax(-1)`, :obj:`out.cpu()`, ...) keeps the order, except
    that combining it in any operation (indexing, comparison, arithmetic,
    loss functions) with a tensor known to be in the other order raises
    :class:`~torch_autoscale.errors.NodeOrderError`: the input graph's masks
    and labels are in the original order, those of
    :obj:`PartitionedData.data` in the permuted one. Unknown tensors combine
    freely. :obj:`tensor.as_subclass(torch.Tensor)` drops the order;
    :func:`torch.save` stores a plain tensor.
    """
    _node_order: NodeOrder
    _order: str

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves, _ = tree_flatten((args, kwargs))
        mine = [t for t in leaves if isinstance(t, NodeOrderTensor)
                and getattr(t, '_node_order', None) is not None]
        if mine:
            _check_orders(mine, leaves, func)
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        if not mine or func in _PLAIN_RESULTS:
            return out
        node_order, order = mine[0]._node_order, mine[0]._order
        return _tag_tree(out, node_order, order)

    def __deepcopy__(self, memo: Dict[int, Any]) -> 'NodeOrderTensor':
        plain = copy.deepcopy(self.as_subclass(Tensor), memo)
        return self._node_order.tag(plain, self._order)

    def __reduce_ex__(self, protocol: int) -> Any:
        # Saved and pickled as a plain tensor: the known tensors of the other
        # order do not travel with it.
        return self.as_subclass(Tensor).__reduce_ex__(protocol)


# Results that describe the tensor rather than hold per-node values.
_PLAIN_RESULTS = {Tensor.__repr__, Tensor.__format__, Tensor.tolist,
                  Tensor.numpy, Tensor.as_subclass}


def _check_orders(mine: List[NodeOrderTensor], leaves: List[Any],
                  func: Any) -> None:
    first = mine[0]
    for t in mine[1:]:  # Two tagged tensors of one PartitionedData.
        if t._node_order is first._node_order and t._order != first._order:
            _raise(first, t._order, func)
    for leaf in leaves:
        if isinstance(leaf, Tensor) and not isinstance(leaf, NodeOrderTensor):
            for t in mine:
                order = t._node_order.order_of(leaf)
                if order is not None and order != t._order:
                    _raise(t, order, func)


def _raise(t: NodeOrderTensor, other: str, func: Any) -> None:
    name = getattr(func, '__name__', repr(func))
    what = ('the output of mini_inference' if t._order == PERMUTED else
            f'a tensor mapped with {t._node_order.name}.to_original')
    raise NodeOrderError(
        f"'{name}' combines {what}, which is in the {t._order} node order of "
        f"{t._node_order.name} (that of "
        f"{'its data' if t._order == PERMUTED else 'the input graph'}), "
        f"with a tensor in the {other} order (that of "
        f"{'the input graph' if other == ORIGINAL else 'pdata.data'}); the "
        f"result would be silently wrong. {_FIX[t._order].capitalize()}")


def _tag_tree(out: Any, node_order: NodeOrder, order: str) -> Any:
    r"""Tags the tensors among the results of an operation on a tagged
    tensor, except scalars (an accuracy is no longer per node)."""
    if isinstance(out, Tensor):
        if out.dim() == 0 or isinstance(out, NodeOrderTensor) and (
                getattr(out, '_node_order', None) is not None):
            return out  # In-place results are tagged already.
        return node_order.tag(out, order)
    if isinstance(out, list):
        return [_tag_tree(item, node_order, order) for item in out]
    if isinstance(out, tuple):  # Including torch.return_types.
        items = [_tag_tree(item, node_order, order) for item in out]
        return type(out)(items) if hasattr(out, 'n_fields') else tuple(items)
    return out


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"'order' must be one of {ORDERS} (got {order!r})")


def _storage_key(tensor: Tensor) -> Optional[int]:
    if not isinstance(tensor, Tensor) or tensor.layout != torch.strided or (
            tensor.numel() == 0):
        return None
    return tensor.untyped_storage().data_ptr()
