r"""Data-parallel GAS over :mod:`torch.distributed` (gloo on CPUs, NCCL on
GPUs, launched with :obj:`torchrun`): parameters through
:class:`~torch.nn.parallel.DistributedDataParallel`, clusters assigned to
processes, and histories either in one shared-memory table per machine or
sharded across processes."""
from .assignment import ClusterAssignment
from .context import (
    DEFAULT_TIMEOUT,
    collective,
    get_rank,
    get_timeout,
    get_world_size,
    init_process_group,
    local_rank,
    local_world_size,
)
from .history import (
    HISTORY_MODES,
    ShardedHistory,
    SharedHistory,
    exchange_rows,
    history_factory,
)
from .inference import mini_inference
from .loader import (
    DistributedClusterSampler,
    DistributedEvalSubgraphLoader,
    DistributedSubgraphLoader,
    num_steps,
)

__all__ = [
    'ClusterAssignment',
    'DistributedClusterSampler',
    'DistributedSubgraphLoader',
    'DistributedEvalSubgraphLoader',
    'num_steps',
    'HISTORY_MODES',
    'SharedHistory',
    'ShardedHistory',
    'exchange_rows',
    'history_factory',
    'mini_inference',
    'init_process_group',
    'DEFAULT_TIMEOUT',
    'get_timeout',
    'collective',
    'get_rank',
    'get_world_size',
    'local_rank',
    'local_world_size',
]
