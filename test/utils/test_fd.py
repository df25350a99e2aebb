import os
import sys

import pytest

from torch_autoscale.utils import fd as fd_module
from torch_autoscale.utils.fd import fd_path, supports_fd_paths


def test_fd_path_reopens_the_same_file(tmp_path):
    if not supports_fd_paths():
        assert fd_path(0) is None
        pytest.skip('no procfs on this system')  # Covered on Linux (CI).
    fd = os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600)
    try:
        os.write(fd, b'unnamed')
        with open(fd_path(fd), 'rb') as f:  # Also by process id.
            assert f.read() == b'unnamed'
        with open(fd_path(fd, os.getpid()), 'rb') as f:
            assert f.read() == b'unnamed'
        assert os.listdir(tmp_path) == []
    finally:
        os.close(fd)


def test_no_procfs_means_no_path(monkeypatch, tmp_path):
    monkeypatch.setattr(fd_module, '_PROCFS', str(tmp_path / 'missing'))
    assert fd_path(3) is None
    assert not supports_fd_paths()


pytestmark = pytest.mark.skipif(sys.platform == 'win32',
                                reason='file descriptors differ')
