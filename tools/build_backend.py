r"""PEP 517 build backend: setuptools, compiling against the user's own torch.

``pyproject.toml`` names this module (``backend-path = ["tools"]``). pip
builds in an isolated environment by default, which holds only the packages
in ``[build-system] requires``. Listing ``torch`` there made pip download a
second torch, the newest one with its CUDA wheels (about 3 GB), only to
compile ``_C`` against a torch the user does not run. So torch is not listed;
instead this backend finds the torch of the interpreter that pip installs
into and compiles against that one:

1. ``import torch`` works (``pip install --no-build-isolation``): that torch.
2. An isolated build: pip runs this backend with the target interpreter but
   hides its site-packages (``PYTHONPATH`` overlay, ``PYTHONNOUSERSITE``). The
   same interpreter, started without that overlay, names the directory its
   ``torch`` is imported from, and that directory is appended to
   :obj:`sys.path`: after the build environment's, so setuptools, wheel and
   ninja still come from the build environment.
3. No torch anywhere (e.g. torch and torch_autoscale in one ``pip install``,
   where pip builds before it installs torch): ``setup.py`` builds the package
   without ``_C``, and ``import torch_autoscale`` warns how to build it; the
   pure-PyTorch fallback gives the same results, more slowly.
   ``TORCH_AUTOSCALE_REQUIRE_NATIVE=1`` makes that an error instead.

Everything else is ``setuptools.build_meta``.
"""
import importlib
import os
import subprocess
import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403

__all__ = list(_setuptools.__all__)

_PROBE = ('import os, torch; '
          'print(os.path.dirname(os.path.dirname(torch.__file__)))')


def _interpreter_torch_site():
    r"""The directory the target interpreter imports torch from, asked of
    that interpreter without pip's isolation; :obj:`None` if it has none."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'PYTHONNOUSERSITE', 'PYTHONHOME')
    }
    candidates = [sys.executable]
    venv = os.environ.get('VIRTUAL_ENV')  # `python -m build`, uv: own venv
    if venv:
        candidates.append(os.path.join(venv, 'bin', 'python'))
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        try:
            out = subprocess.run([python, '-c', _PROBE], env=env,
                                 capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            continue
        site = out.stdout.strip().splitlines()[-1:] if out.returncode == 0 \
            else []
        if site and os.path.isdir(site[0]):
            return site[0]
    return None


def _find_torch():
    try:
        import torch
        return os.path.dirname(os.path.dirname(torch.__file__))
    except ImportError:
        pass
    site = _interpreter_torch_site()
    if site is not None:
        sys.path.append(site)
        importlib.invalidate_caches()
        try:
            import torch  # noqa: F401
            print(f'torch_autoscale: compiling against the installed torch '
                  f'{torch.__version__} from {site}', file=sys.stderr)
            return site
        except ImportError as e:  # pragma: no cover - a broken install
            print(f'torch_autoscale: the torch in {site} does not import in '
                  f'the build environment ({e})', file=sys.stderr)
            sys.path.remove(site)
    print('torch_autoscale: no torch found; building without the native '
          'extension (install torch first to get it)', file=sys.stderr)
    return None


_found = []


def _with_torch(hook):
    r"""``hook`` once torch is importable, if it can be."""

    def wrapper(*args, **kwargs):
        if not _found:
            _found.append(_find_torch())
        return hook(*args, **kwargs)

    wrapper.__name__ = hook.__name__
    wrapper.__doc__ = hook.__doc__
    return wrapper


# Only the builds compile: the other hooks (build requirements, metadata, the
# sdist) do not depend on torch and skip the few seconds of finding it.
for _name in ('build_wheel', 'build_editable'):
    if hasattr(_setuptools, _name):
        globals()[_name] = _with_torch(getattr(_setuptools, _name))
