r"""Class 1 of the fault suite: native memory safety.

Every native op validates every index it dereferences before touching
memory, with the error of the pure-PyTorch path. The risky calls run in a
child interpreter (the :obj:`isolated` fixture), so a crash fails the test
instead of ending the run.
"""
import pytest

import torch_autoscale.typing

pytestmark = pytest.mark.skipif(not torch_autoscale.typing.WITH_NATIVE,
                                reason='torch_autoscale._C is not built')

CASES = {
    # The row pointer ends past the entries: the old kernel wrote out of
    # bounds (SIGSEGV or heap corruption).
    'csr_transpose_rowptr_past_end':
    ('ops.csr_transpose(torch.tensor([0, 4, 3]), torch.tensor([0, 1, 2]), 3)',
     'non-decreasing'),
    'csr_transpose_rowptr_huge':
    ('ops.csr_transpose(torch.tensor([0, 2**62, 3]), '
     'torch.tensor([0, 1, 2]), 3)', 'non-decreasing'),
    'csr_transpose_col_out_of_range':
    ('ops.csr_transpose(torch.tensor([0, 1, 3]), '
     'torch.tensor([0, -5, 2**62]), 3)', "'col' contains column"),
    'transpose_csr_unchecked_tensor':
    ('from torch_autoscale.utils import transpose_csr\n'
     'adj = torch.sparse_csr_tensor(torch.tensor([0, 4, 3]), '
     'torch.tensor([0, 1, 2]), torch.ones(3), (2, 3), '
     'check_invariants=False)\n'
     'transpose_csr(adj)', 'non-decreasing'),
    'relabel_one_hop_rowptr_past_end':
    ('ops.relabel_one_hop(torch.tensor([0, 9, 3]), torch.tensor([0, 1, 0]), '
     'None, torch.tensor([0]))', 'not a valid CSR pointer'),
    'relabel_one_hop_n_id_out_of_range':
    ('ops.relabel_one_hop(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), '
     'None, torch.tensor([2**62]))', "'n_id' contains node"),
    # A row pointer that does not start at 0: both paths used to accept it
    # (the edges before rowptr[0] were lost).
    'relabel_one_hop_rowptr_not_at_zero':
    ('ops.relabel_one_hop(torch.tensor([1, 2, 3, 5, 6]), '
     'torch.tensor([1, 3, 0, 1, 3, 2]), None, torch.tensor([0]))',
     "'rowptr' must start at 0"),
    # Arguments of the wrong type or device: the paths used to disagree
    # (truncation, TypeError, RuntimeError, NotImplementedError, a no-op).
    'relabel_one_hop_bipartite_not_bool':
    ('ops.relabel_one_hop(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), '
     "None, torch.tensor([0]), bipartite='yes')",
     "'bipartite' must be a bool"),
    'relabel_one_hop_meta':
    ('ops.relabel_one_hop(torch.tensor([0, 1, 2], device="meta"), '
     'torch.tensor([1, 0]), None, torch.tensor([0]))',
     "'rowptr' must be a CPU tensor (got device meta)"),
    'csr_transpose_float_num_cols':
    ('ops.csr_transpose(torch.tensor([0, 1]), torch.tensor([3]), 4.7)',
     "'num_cols' must be an int (got float 4.7)"),
    'csr_transpose_nan_num_cols':
    ('ops.csr_transpose(torch.tensor([0, 1]), torch.tensor([3]), '
     'float("nan"))', "'num_cols' must be an int (got float nan)"),
    'csr_transpose_meta':
    ('ops.csr_transpose(torch.tensor([0, 1]), torch.tensor([0], '
     'device="meta"), 3)', "'col' must be a CPU tensor (got device meta)"),
    # 2**40 + 1 int64 entries: the allocator's RuntimeError before.
    'csr_transpose_num_cols_too_large':
    ('ops.csr_transpose(torch.tensor([0, 1]), torch.tensor([0]), 2**40)',
     "'num_cols' = 1099511627776 needs 8,192.0 GiB"),
    'read_async_meta_dst':
    ('ops.read_async(torch.randn(10, 4), None, None, torch.tensor([3, 1]), '
     'torch.empty(2, 4), torch.empty(2, 4, device="meta"))',
     "'dst' must be a CPU or CUDA tensor (got device meta)"),
    'write_async_meta_src':
    ('ops.write_async(torch.empty(3, 4, device="meta"), torch.tensor([4]), '
     'torch.tensor([3]), torch.zeros(10, 4))',
     "'src' must be a CPU or CUDA tensor (got device meta)"),
    'transpose_csr_long_row_pointer':
    ('from torch_autoscale.utils import transpose_csr\n'
     'adj = torch.sparse_csr_tensor(torch.tensor([0, 1, 2, 3, 3]), '
     'torch.tensor([0, 1, 2]), torch.ones(3), (2, 3), '
     'check_invariants=False)\n'
     'transpose_csr(adj)', 'row pointer has 5 entries but its 2 rows'),
    'transpose_csr_short_values':
    ('from torch_autoscale.utils import transpose_csr\n'
     'adj = torch.sparse_csr_tensor(torch.tensor([0, 1, 3]), '
     'torch.tensor([0, 1, 2]), torch.ones(2), (2, 3), '
     'check_invariants=False)\n'
     'transpose_csr(adj)', 'it has 2 values but 3 column indices'),
    'read_async_src_aliases_buffer':
    ('src = torch.randn(10, 4)\n'
     'ops.read_async(src, None, None, torch.tensor([3, 1]), src, '
     'torch.empty(2, 4))', 'share memory'),
    'read_async_dst_overlaps_buffer':
    ('src, buf = torch.randn(10, 4), torch.empty(4, 4)\n'
     'ops.read_async(src, None, None, torch.tensor([3, 1]), buf, buf[1:])',
     'share memory'),
    'read_async_negative_count':
    ('src = torch.randn(10, 4)\n'
     'ops.read_async(src, torch.tensor([0, 5]), torch.tensor([3, -2]), '
     'torch.tensor([], dtype=torch.long), torch.empty(4, 4), '
     'torch.empty(4, 4))', 'out of range'),
    'write_async_src_aliases_dst':
    ('dst = torch.randn(10, 4)\n'
     'ops.write_async(dst[2:5], torch.tensor([4]), torch.tensor([3]), dst)',
     'share memory'),
    'write_async_overlapping_runs':
    ('dst = torch.zeros(10, 4)\n'
     'ops.write_async(torch.randn(5, 4), torch.tensor([0, 2]), '
     'torch.tensor([3, 2]), dst)', 'must not overlap'),
    'write_async_huge_offset':
    ('dst = torch.zeros(10, 4)\n'
     'ops.write_async(torch.randn(1, 4), torch.tensor([2**62]), '
     'torch.tensor([1]), dst)', 'out of range'),
}


SETUP = 'import torch\nfrom torch_autoscale import ops\n'


@pytest.fixture(scope='module', params=['native', 'fallback'])
def results(request, isolated):
    r"""Every case run in one child interpreter per path."""
    env = {} if request.param == 'native' else {
        'TORCH_AUTOSCALE_DISABLE_NATIVE': '1'
    }
    return isolated.cases(SETUP, {k: v[0]
                                  for k, v in CASES.items()}, env=env)


@pytest.mark.parametrize('case', list(CASES))
def test_malformed_input_is_a_value_error(results, case):
    result, match = results[case], CASES[case][1]
    assert result['error'] == 'ValueError', result
    assert match in result['message'], result


def test_native_and_fallback_errors_are_identical(isolated):
    code = ['import torch_autoscale.typing as typing', 'messages = {}']
    for name, (call, _) in CASES.items():
        if 'transpose_csr' in name:
            continue
        code += [
            f'messages[{name!r}] = []', 'for native in (True, False):',
            '    typing.WITH_NATIVE = native', '    try:',
            '        ' + call.replace('\n', '\n        '),
            '    except ValueError as e:',
            f'        messages[{name!r}].append(str(e))',
        ]
    code += ['for name, (a, b) in messages.items():',
             '    assert a == b, (name, a, b)',
             'print(len(messages))']
    result = isolated(SETUP + '\n'.join(code))
    assert result['error'] is None, result
    compared = [name for name in CASES if 'transpose_csr' not in name]
    assert result['stdout'].strip().endswith(str(len(compared)))
