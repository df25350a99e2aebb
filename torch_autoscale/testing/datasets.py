r"""Where the tests and benchmarks find unpacked PyG dataset roots: the
folder named by the :obj:`TORCH_AUTOSCALE_DATA` environment variable. The
library itself never hard-codes a data path."""
import os
from typing import Optional

DATA_ENV = 'TORCH_AUTOSCALE_DATA'
r"""The environment variable that names the folder of dataset roots."""


def data_root(*required: str) -> Optional[str]:
    r"""The folder of unpacked PyG dataset roots named by the
    :obj:`TORCH_AUTOSCALE_DATA` environment variable, if it holds all of
    :obj:`required`; :obj:`None` otherwise, so that a test can skip.

    Args:
        *required (str): Paths, relative to the folder, that must exist.

    Returns:
        str, optional: The absolute path of the folder (a relative one is
        resolved against the working directory), or :obj:`None`.
    """
    root = os.environ.get(DATA_ENV)
    if not root or not os.path.isdir(root):
        return None
    if not all(os.path.exists(os.path.join(root, r)) for r in required):
        return None
    return os.path.abspath(root)
