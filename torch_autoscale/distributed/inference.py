r"""Exact layer-wise inference with every process computing its own
clusters."""
import torch
import torch.distributed as dist
from torch import Tensor

from torch_autoscale.distributed.context import (
    collective,
    comm_device,
    require_group,
)
from torch_autoscale.nn import ScalableGNN


@torch.no_grad()
def mini_inference(model: torch.nn.Module, loader,
                   progress: bool = True, group=None) -> Tensor:
    r"""Layer-wise inference for all nodes, spread over the processes:
    every process runs :meth:`~torch_autoscale.nn.ScalableGNN.mini_inference`
    on the clusters it owns (layer :math:`\ell` of all of them before layer
    :math:`\ell + 1`, the histories sharing the results), then the outputs
    are summed across processes, so that every process returns the output of
    every node. It equals full-batch inference up to floating point error,
    as the single-process one does, and also refreshes every history.

    Collective: every process of :obj:`group` calls it.

    Args:
        model (ScalableGNN or DistributedDataParallel): The model, whose
            histories are shared across the processes
            (:func:`~torch_autoscale.distributed.history_factory`).
        loader (DistributedEvalSubgraphLoader): This process's clusters.
        progress (bool, optional): Whether to show a progress bar.
            (default: :obj:`True`)
        group (torch.distributed.ProcessGroup, optional): The processes.
            (default: :obj:`None`, all)

    Returns:
        The output of every node, in the loader's (permuted) node order.

    Raises:
        DistributedTimeoutError: If a process of the group stopped answering
            (see :func:`~torch_autoscale.distributed.collective`).
    """
    require_group("'mini_inference'")
    module = getattr(model, 'module', model)  # DistributedDataParallel.
    if not isinstance(module, ScalableGNN):
        raise ValueError(f"'model' must be a ScalableGNN or wrap one (got "
                         f"{type(module).__name__})")
    assignment = getattr(loader, 'assignment', None)
    if assignment is None:
        raise ValueError("'loader' must be a DistributedEvalSubgraphLoader "
                         "(it knows which clusters this process owns)")
    out = module.mini_inference(loader, progress=progress,
                                 nodes=assignment.nodes(loader.rank))
    foreign = (assignment.node_owner != loader.rank).nonzero().view(-1)
    out.index_fill_(0, foreign, 0.0)
    dev = comm_device(group)
    total = out.to(dev)
    with collective("'mini_inference' (summing the outputs)", group):
        dist.all_reduce(total, group=group)
    return total.to(out.device)
