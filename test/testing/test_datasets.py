from torch_autoscale.testing import DATA_ENV, data_root


def test_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_root() is None
    monkeypatch.setenv(DATA_ENV, str(tmp_path / 'missing'))
    assert data_root() is None
    (tmp_path / 'Cora').mkdir()
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root() == data_root('Cora') == str(tmp_path)
    assert data_root('Cora', 'PROTEINS') is None
    # A relative folder is resolved now, so that scripts started elsewhere
    # (another working directory) still find it.
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setenv(DATA_ENV, tmp_path.name)
    assert data_root('Cora') == str(tmp_path)
