r"""Imports scripts that live outside the package (examples, benchmarks),
so that tests can call their functions."""
import importlib.util
import os
import sys
from typing import Any


def load_script(path: str, name: str) -> Any:
    r"""Imports a script (an example or a benchmark outside the package)
    as a module named :obj:`name`, with its folder on :obj:`sys.path` for
    the duration of the import (for its sibling modules).

    Args:
        path (str): The script's file.
        name (str): The name of the module.

    Returns:
        The imported module.
    """
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
