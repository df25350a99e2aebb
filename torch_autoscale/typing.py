r"""Optional backends, probed once.

Every optional native piece is imported here and exposed as a boolean flag, so
call sites pick the best available backend and fall back to pure PyTorch
(the pattern of :mod:`torch_geometric.typing`).
"""
import json
import logging
import os
import os.path as osp
import warnings

import torch

log = logging.getLogger(__name__)

WITH_NATIVE: bool = False
r"""Whether the :obj:`torch_autoscale._C` extension was built and loaded."""

NATIVE_TORCH_VERSION = None
r"""The torch release :obj:`torch_autoscale._C` was compiled against (as the
loaded extension reports it), or :obj:`None` when it is not loaded."""


def _minor(version):
    return tuple(version.split('+')[0].split('.')[:2])


def _rebuild_advice():
    r"""The command that builds ``_C`` against the running torch, for the way
    this copy of torch_autoscale was installed."""
    here = osp.dirname(osp.abspath(__file__))
    root = osp.dirname(here)
    from importlib import metadata
    try:
        dist = metadata.distribution('torch_autoscale')
        direct = json.loads(dist.read_text('direct_url.json') or '{}')
        installed = osp.realpath(str(dist.locate_file('torch_autoscale')))
        if dist.read_text('RECORD') is None:  # a checkout's egg-info
            dist = None
    except (metadata.PackageNotFoundError, ValueError, TypeError):
        dist, direct, installed = None, {}, None
    if dist is None or direct.get('dir_info', {}).get('editable') or \
            installed != osp.realpath(here):
        # A source checkout: installed editable, or imported from the path.
        if osp.exists(osp.join(root, 'Makefile')):
            return f"run 'make install' in {root}"
        return f"run 'pip install --no-build-isolation -e {root}'"
    # A regular install: reinstall from the same source, which compiles
    # against the installed torch; no cache, which may hold a wheel built
    # against another torch.
    source = direct.get('url') or f'torch_autoscale=={dist.version}'
    if source.startswith('file://'):
        from urllib.parse import unquote
        source = unquote(source[len('file://'):])
    return (f"run 'pip install --force-reinstall --no-deps --no-cache-dir "
            f"{source}'")


def _load_native():
    r"""Loads ``_C`` if it was built against this torch's minor release.
    Returns the torch version it reports, or :obj:`None` and the reason it is
    not used."""
    try:
        from torch_autoscale import _build_info as info
    except ImportError:
        info = None
    if info is not None and not info.NATIVE:
        return None, f'this copy was installed without it ({info.SKIPPED})'
    if info is not None and _minor(info.TORCH_VERSION) != _minor(
            torch.__version__):
        # PyTorch's C++ ABI changes between releases: loading it could fail
        # on a missing symbol or, worse, load and misbehave.
        return None, (f'it was compiled against torch {info.TORCH_VERSION}, '
                      f'but this process runs torch {torch.__version__}')
    try:
        from torch_autoscale import _C  # noqa: F401
    except ImportError as e:
        if info is None:
            return None, 'it was not built in this source checkout'
        return None, f'it could not be loaded ({e})'
    try:
        built = torch.ops.torch_autoscale.torch_version()
    except (AttributeError, RuntimeError):  # pragma: no cover
        return None, 'it is older than its sources (no torch_version op)'
    if _minor(built) != _minor(torch.__version__):  # pragma: no cover
        return None, (f'it was compiled against torch {built}, but this '
                      f'process runs torch {torch.__version__}')
    return built, None


if os.environ.get('TORCH_AUTOSCALE_DISABLE_NATIVE', '0') == '1':
    log.info('torch_autoscale._C disabled by TORCH_AUTOSCALE_DISABLE_NATIVE=1')
else:
    NATIVE_TORCH_VERSION, _reason = _load_native()
    WITH_NATIVE = NATIVE_TORCH_VERSION is not None
    if _reason is not None:  # pragma: no cover - depends on the build
        warnings.warn(
            f"The native extension 'torch_autoscale._C' is not used: "
            f"{_reason}. Every operation falls back to pure PyTorch with the "
            f"same results, more slowly. To build it against the installed "
            f"torch {torch.__version__}, {_rebuild_advice()}. "
            f"TORCH_AUTOSCALE_DISABLE_NATIVE=1 silences this warning.",
            stacklevel=2)

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
    'NATIVE_TORCH_VERSION',
    'WITH_CUDA_OPS',
    'WITH_PYMETIS',
    'WITH_TORCH_SPARSE',
    'WITH_PYG_LIB',
]
