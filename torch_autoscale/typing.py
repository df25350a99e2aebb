r"""Optional backends, probed once.

Every optional native piece is imported here and exposed as a boolean flag, so
call sites pick the best available backend and fall back to pure PyTorch
(the pattern of :mod:`torch_geometric.typing`).
"""
import logging
import os
import warnings

import torch

log = logging.getLogger(__name__)

WITH_NATIVE: bool = False
r"""Whether the :obj:`torch_autoscale._C` extension was built and loaded."""

if os.environ.get('TORCH_AUTOSCALE_DISABLE_NATIVE', '0') == '1':
    log.info('torch_autoscale._C disabled by TORCH_AUTOSCALE_DISABLE_NATIVE=1')
else:
    try:
        from torch_autoscale import _C  # noqa: F401
        WITH_NATIVE = True
    except ImportError as e:  # pragma: no cover - depends on the build
        warnings.warn(
            f"The native extension 'torch_autoscale._C' could not be loaded "
            f"({e}); falling back to pure-PyTorch implementations with the "
            f"same results. Reinstall with 'pip install --no-build-isolation "
            f"-e .' to build it.", stacklevel=2)

WITH_CUDA_OPS: bool = (WITH_NATIVE and torch.cuda.is_available()
                       and torch.ops.torch_autoscale.cuda_version() > 0)
r"""Whether the native extension was built with CUDA kernels and a GPU is
present."""

try:
    import pymetis  # noqa: F401
    WITH_PYMETIS = True
except ImportError:  # pragma: no cover
    WITH_PYMETIS = False

try:
    import torch_sparse  # noqa: F401
    WITH_TORCH_SPARSE = hasattr(torch.ops.torch_sparse, 'partition')
except Exception:  # pragma: no cover - optional, broken builds happen
    WITH_TORCH_SPARSE = False

try:
    import pyg_lib  # noqa: F401
    WITH_PYG_LIB = hasattr(torch.ops, 'pyg') and hasattr(
        torch.ops.pyg, 'metis')
except Exception:  # pragma: no cover
    WITH_PYG_LIB = False

__all__ = [
    'WITH_NATIVE',
    'WITH_CUDA_OPS',
    'WITH_PYMETIS',
    'WITH_TORCH_SPARSE',
    'WITH_PYG_LIB',
]
