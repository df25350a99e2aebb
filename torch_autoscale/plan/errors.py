r"""The error the planner raises when nothing fits, naming the budget that
is too small and the smallest budgets that would do."""
import math
from typing import Optional, Sequence

from .estimator import Hardware
from .placement import DTYPES
from .search import Candidate, search_space
from .sizes import ByteSize, format_budget, format_bytes, parse_budget
from .stats import GraphStats, ModelSpec


class BudgetError(ValueError):
    r"""Raised by :func:`~torch_autoscale.plan.plan` when no configuration
    fits the budgets (a :class:`ValueError`).

    Attributes:
        min_device_bytes (int): The smallest device budget of any plan
            (with an unlimited host budget).
        min_host_bytes (int): The smallest host budget of any plan (with an
            unlimited device budget).
    """

    def __init__(self, message: str, min_device_bytes: int,
                 min_host_bytes: int):
        super().__init__(message)
        self.min_device_bytes = min_device_bytes
        self.min_host_bytes = min_host_bytes


def nothing_fits(stats: GraphStats, spec: ModelSpec,
                 candidates: Sequence[Candidate], hardware: Hardware,
                 cpu: bool, disk_dir: Optional[str],
                 device_budget: Optional[ByteSize],
                 host_budget: Optional[ByteSize], precision: str,
                 recompute: bool) -> BudgetError:
    r"""The error :func:`plan` raises when nothing fits: which budget is
    too small, and the smallest budgets any candidate needs with the
    dtypes and fates :func:`plan` was allowed.

    Args:
        stats (GraphStats): The graph's sizes.
        spec (ModelSpec): The model's shape.
        candidates (list of Candidate): The configurations tried.
        hardware (Hardware): The throughputs of the time model.
        cpu (bool): Whether the compute device is the CPU.
        disk_dir (str, optional): The folder of disk-tier histories, if
            the disk tier was allowed.
        device_budget (int or str, optional): The device budget.
        host_budget (int or str, optional): The host budget.
        precision (str): The :obj:`precision` of :func:`plan`.
        recompute (bool): Whether layers could be recomputed.
    """
    dtypes = ('float32', ) if precision == 'float32-only' else tuple(DTYPES)
    min_device = min_host = math.inf
    for candidate in candidates:
        space = search_space(stats, spec, candidate.halo, hardware, cpu,
                             dtypes, disk_dir is not None, recompute)
        dev = space.fixed_device + sum(
            min(o.device for o in entry) for entry in space.options)
        host = space.fixed_host + sum(
            min(o.host for o in entry) for entry in space.options)
        if cpu:  # One memory: the step's tensors are host memory too.
            host += dev
        min_device, min_host = min(min_device, dev), min(min_host, host)
    min_device, min_host = int(math.ceil(min_device)), int(
        math.ceil(min_host))

    smallest = ['the smallest batches']
    if len(dtypes) > 1:
        smallest.insert(0, 'half-precision histories')
    if recompute:
        smallest.insert(-1, 'recomputed layers')
    if disk_dir is not None:
        smallest.insert(0, 'disk histories')
    how = f"({', '.join(smallest)})"
    hints = []
    if disk_dir is None:
        hints.append("pass 'disk_dir' to allow disk histories")
    if precision == 'float32-only':
        hints.append("allow half-precision histories with "
                     "precision='float32'")
    if not recompute:
        hints.append("allow recomputed layers with recompute=True")
    device_bytes = parse_budget(device_budget, 'device_budget')
    host_bytes = parse_budget(host_budget, 'host_budget')
    if not stats.on_disk and host_bytes is not None and \
            host_bytes < min_host:
        hints.append(f"or keep the graph "
                     f"({format_bytes(stats.graph_bytes)}) on disk: plan "
                     f"with a torch_autoscale.store.GraphStore (e.g., "
                     f"store_from_data(data, path)), which counts only a "
                     f"mini-batch's rows in host memory")
    hint = ''.join(f'; {h}' for h in hints)
    where = ("on a CPU, where the step, the histories and the graph share "
             "one memory, " if cpu else '')
    failed = []
    if device_bytes is not None and device_bytes < min_device:
        failed.append(f"'device_budget' ({format_bytes(device_bytes)}) is "
                      f"below the {format_bytes(min_device)} the smallest "
                      f"plan {how} needs on the device")
    if host_bytes is not None and host_bytes < min_host:
        failed.append(f"'host_budget' ({format_bytes(host_bytes)}) is below "
                      f"the {format_bytes(min_host)} the smallest plan "
                      f"{how} needs in host memory" +
                      (', the graph included' if cpu else ''))
    if failed:
        message = (f"nothing fits: {where}{' and '.join(failed)}; "
                   f"raise {'it' if len(failed) == 1 else 'both'} to at "
                   f"least that{hint}")
    else:  # Each budget would do alone, but no plan fits both at once.
        message = (f"nothing fits device budget "
                   f"{format_budget(device_bytes)} and host budget "
                   f"{format_budget(host_bytes)} together: a plan needs a "
                   f"device budget of at least {format_bytes(min_device)} "
                   f"with unlimited host memory, and a host budget of at "
                   f"least {format_bytes(min_host)} with unlimited device "
                   f"memory, but none needs little of both; raise either "
                   f"budget{hint}")
    return BudgetError(message, min_device, min_host)
