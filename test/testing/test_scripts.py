import sys

from torch_autoscale.testing import load_script


def test_load_script_sees_its_siblings(tmp_path):
    (tmp_path / 'sibling.py').write_text('VALUE = 3\n')
    (tmp_path / 'script.py').write_text(
        'import sibling\n\ndef twice():\n    return 2 * sibling.VALUE\n')
    module = load_script(str(tmp_path / 'script.py'), 'script_under_test')
    assert module.twice() == 6
    assert module.__name__ == 'script_under_test'
    assert str(tmp_path) not in sys.path
