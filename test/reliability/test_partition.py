r"""Faults at the door to METIS: weights it cannot take never reach it.

Calls that used to crash or mislead inside METIS (all-zero edge weights,
integer weights near :math:`2^{60}`) run in a child process (the
:obj:`isolated` fixture), several cases per child to keep the suite fast;
calls that must be refused before METIS runs are tested in-process.
"""
import logging

import pytest
import torch
from torch_geometric.utils import grid

from torch_autoscale.errors import PartitionInputError
from torch_autoscale.partition import lpmetis, metis, partition
from torch_autoscale.partition import backend, partition_report


def test_all_zero_edge_weights(isolated):
    # Used to segfault inside METIS (lpmetis) or fail with an internal
    # `max(): Expected reduction dim` (metis). All edges drop, and the
    # edgeless graph is balanced by node weight.
    result = isolated('''
        import torch
        from torch_geometric.utils import grid
        from torch_autoscale.partition import lpmetis, metis, part_sizes

        edge_index, _ = grid(45, 45)
        num_nodes, num_parts = 45 * 45, 8
        for zero in [torch.zeros(edge_index.size(1)),
                     torch.zeros(edge_index.size(1), dtype=torch.long)]:
            for seed in range(6):
                cluster = lpmetis(edge_index, num_nodes, num_parts,
                                  edge_weight=zero, seed=seed, verbose=False)
                sizes = part_sizes(cluster, num_parts)
                assert int(sizes.max() - sizes.min()) <= 1, (seed, sizes)
            cluster = metis(edge_index, num_nodes, num_parts,
                            edge_weight=zero, verbose=False)
            sizes = part_sizes(cluster, num_parts)
            assert int(sizes.max() - sizes.min()) <= 1, sizes

        # Balanced by node weight, within one node's weight:
        node_weight = torch.arange(num_nodes) % 5 + 1
        cluster = metis(edge_index, num_nodes, num_parts,
                        node_weight=node_weight, edge_weight=zero,
                        verbose=False)
        part_weight = torch.zeros(num_parts, dtype=torch.long)
        part_weight.index_add_(0, cluster, node_weight)
        mean = int(node_weight.sum()) / num_parts
        assert float((part_weight - mean).abs().max()) <= 5, part_weight
    ''')
    assert result['error'] is None, result


def test_huge_float_and_mixed_weights(isolated):
    # Weights near 2**60 used to overflow METIS' sums (edge cut 0.23
    # instead of 0.04, or every node in one part). Now they, floats near
    # the ends of their range, and mixes with zeros partition like the
    # same weights divided down.
    result = isolated('''
        import torch
        from torch_geometric.utils import grid
        from torch_autoscale.partition import lpmetis, metis
        from torch_autoscale.partition import partition_report

        edge_index, _ = grid(32, 32)
        num_nodes, num_edges, k = 1024, edge_index.size(1), 4
        gen = torch.Generator().manual_seed(0)
        small = torch.randint(1, 2**10, (num_edges, ), generator=gen)
        huge = small * 2**50 + torch.randint(0, 2**40, (num_edges, ),
                                             generator=gen)
        node_small = torch.randint(1, 10, (num_nodes, ), generator=gen)
        node_huge = node_small * 2**56 + torch.randint(0, 2**30,
                                                       (num_nodes, ),
                                                       generator=gen)

        def quality(cluster):
            report = partition_report(edge_index, cluster, k,
                                      edge_weight=small)
            part = torch.zeros(k, dtype=torch.double)
            part.index_add_(0, cluster, node_small.double())
            return report, float(part.max() / part.mean())

        def run(method, edge_weight, node_weight=None):
            if method == 'lpmetis':
                return lpmetis(edge_index, num_nodes, k, seed=0,
                               edge_weight=edge_weight, verbose=False)
            return metis(edge_index, num_nodes, k, edge_weight=edge_weight,
                         node_weight=node_weight, verbose=False)

        for method in ['metis', 'lpmetis']:
            ref, _ = quality(run(method, small))
            out, _ = quality(run(method, huge))
            assert out.num_empty == 0 and out.size_ratio <= 1.1, out
            assert abs(out.edge_cut - ref.edge_cut) <= 0.01, (method, out,
                                                               ref)

        # Node weights near 2**60, alone and with huge edge weights:
        ref, _ = quality(run('metis', small, node_small))
        for edge_weight in [small, huge]:
            out, balance = quality(run('metis', edge_weight, node_huge))
            assert out.num_empty == 0 and balance <= 1.05, (out, balance)
            assert abs(out.edge_cut - ref.edge_cut) <= 0.02, (out, ref)

        # Weights that divide exactly (2**60 for all) lose nothing: the
        # result is that of unit weights.
        expected = metis(edge_index, num_nodes, k, verbose=False)
        out = metis(edge_index, num_nodes, k, verbose=False,
                    edge_weight=torch.full((num_edges, ), 2**60),
                    node_weight=torch.full((num_nodes, ), 2**60))
        assert torch.equal(out, expected)

        # Float weights at both ends of the range, and a mix:
        gen = torch.Generator().manual_seed(1)
        base = torch.rand(num_edges, generator=gen, dtype=torch.double)
        base = base + 0.01

        def cut(cluster, weight):
            report = partition_report(edge_index, cluster, k,
                                      edge_weight=weight)
            assert report.num_empty == 0 and report.size_ratio <= 1.1
            return report.edge_cut

        for method in [metis, lpmetis]:
            kw = dict(verbose=False)
            if method is lpmetis:
                kw['seed'] = 0
            ref = cut(method(edge_index, num_nodes, k, edge_weight=base,
                             **kw), base)
            # Floats at both ends of the range, in float64 and float32:
            for weight in [base * 1e300, base * 1e-300, (base * 1e36).float(),
                           (base * 1e-36).float()]:
                out = cut(method(edge_index, num_nodes, k,
                                 edge_weight=weight, **kw), base)
                assert abs(out - ref) <= 0.01, (method, weight[0], out, ref)

            # A mix: a third of the edges weigh zero, some 2**62, the rest
            # small integers; matches the same mix divided down.
            mask = torch.rand(num_edges, generator=gen) < 0.3
            mix = torch.randint(1, 100, (num_edges, ), generator=gen)
            mix[mask] = 0
            mix[::97] = 2**10
            ref = cut(method(edge_index, num_nodes, k, edge_weight=mix,
                             **kw), mix)
            out = cut(method(edge_index, num_nodes, k,
                             edge_weight=mix * 2**52, **kw), mix)
            assert abs(out - ref) <= 0.01, (method, out, ref)
    ''')
    assert result['error'] is None, result
    # The lossy rescaling was logged (logging's last-resort handler):
    assert "'edge_weight' was rescaled" in result['stderr']
    assert "'node_weight' was rescaled" in result['stderr']


def bad_weights(size: int):
    ones = torch.ones(size)
    cases = []
    for index, value in [(0, -1.0), (1, float('nan')), (2, float('inf')),
                         (3, float('-inf'))]:
        weight = ones.clone()
        weight[index] = value
        cases.append(weight)
    cases.append(-torch.ones(size, dtype=torch.long))
    return cases


@pytest.mark.parametrize('method', ['metis', 'lpmetis'])
def test_invalid_weights_raise(method):
    edge_index, _ = grid(6, 6)
    num_nodes = 36
    for weight in bad_weights(edge_index.size(1)):
        with pytest.raises(PartitionInputError, match='edge_weight'):
            partition(edge_index, 4, method=method, num_nodes=num_nodes,
                      edge_weight=weight)
        with pytest.raises(ValueError, match='edge_weight'):  # A subclass.
            partition(edge_index, 4, method=method, num_nodes=num_nodes,
                      edge_weight=weight)
    for weight in bad_weights(num_nodes):
        with pytest.raises(PartitionInputError, match='node_weight'):
            metis(edge_index, num_nodes, 4, node_weight=weight)
    with pytest.raises(PartitionInputError, match='node_weight.*positive'):
        metis(edge_index, num_nodes, 4, node_weight=torch.zeros(num_nodes))
    # The message names the fix:
    with pytest.raises(PartitionInputError, match='nan_to_num'):
        lpmetis(edge_index, num_nodes, 4,
                edge_weight=bad_weights(edge_index.size(1))[1])
    with pytest.raises(PartitionInputError, match='clamp'):
        metis(edge_index, num_nodes, 4,
              edge_weight=bad_weights(edge_index.size(1))[0])


def test_quality_metrics_refuse_invalid_weights():
    edge_index, _ = grid(4, 4)
    cluster = torch.arange(16) % 2
    with pytest.raises(PartitionInputError, match='edge_weight'):
        partition_report(edge_index, cluster,
                         edge_weight=bad_weights(edge_index.size(1))[1])


def test_idx_width_is_pymetis_own(monkeypatch):
    pymetis = pytest.importorskip('pymetis')
    monkeypatch.setattr(backend.torch_autoscale.typing,
                        'WITH_TORCH_SPARSE', False)
    monkeypatch.setattr(backend.torch_autoscale.typing, 'WITH_PYG_LIB',
                        False)
    width = pymetis.zero_copy_dtype().itemsize * 8
    assert backend.idx_width() == width
    assert backend.weight_limit() == 2**(width - 4)
    # Native backends of unknown width count as 32-bit:
    monkeypatch.setattr(backend.torch_autoscale.typing, 'WITH_PYG_LIB',
                        True)
    assert backend.idx_width() == 32


@pytest.mark.parametrize('dtype', [torch.long, torch.double])
def test_weights_fit_the_limit(dtype, caplog):
    to_metis = backend.to_metis_weight
    limit = 2**18  # Small enough that floats need rescaling too.
    gen = torch.Generator().manual_seed(0)
    weight = torch.randint(0, 2**62, (1000, ), generator=gen)
    weight[::3] = 0
    weight[1::7] = 1  # Tiny next to the others: must stay positive.
    weight = weight.to(dtype)
    with caplog.at_level(logging.WARNING):
        out = to_metis(weight, 'edge_weight', limit)
    assert out.dtype == torch.long
    assert int(out.sum()) <= limit
    assert torch.equal(out == 0, weight == 0)
    # Proportional where rounding allows:
    big = weight > weight.max() / 2
    ratio = out[big].double() / weight[big].double()
    assert float(ratio.max() / ratio.min()) < 1.01
    assert "'edge_weight' was rescaled" in caplog.text


def test_integer_weights_that_fit_or_divide_exactly(caplog):
    to_metis = backend.to_metis_weight
    weight = torch.tensor([0, 3, 7, 2**20])
    assert torch.equal(to_metis(weight, 'w', 2**28), weight)  # Unchanged.
    with caplog.at_level(logging.WARNING):
        out = to_metis(torch.tensor([0, 3, 6, 9]) * 2**58, 'w', 2**28)
    assert out.tolist() == [0, 1, 2, 3]  # Divided by the gcd, exactly.
    assert caplog.text == ''
    # Idempotent: what it returns passes through again unchanged.
    assert torch.equal(to_metis(out, 'w', 2**28), out)


def test_too_many_positive_weights_for_the_index():
    with pytest.raises(PartitionInputError, match='lpmetis'):
        backend.to_metis_weight(torch.ones(100), 'edge_weight', 64)


def test_32_bit_metis_gets_weights_in_range(monkeypatch):
    # Where METIS has a 32-bit index, the weights it receives are scaled
    # into 2**28 in total (checked at the door, on the arrays it gets):
    monkeypatch.setattr(backend, 'idx_width', lambda: 32)
    received = []
    pymetis_backend = backend._metis_pymetis

    def spy(rowptr, col, num_parts, node_weight, edge_weight, recursive):
        received.append((node_weight, edge_weight))
        return pymetis_backend(rowptr, col, num_parts, node_weight,
                               edge_weight, recursive)

    monkeypatch.setattr(backend, '_backends', lambda: [('pymetis', spy)])
    pytest.importorskip('pymetis')
    edge_index, _ = grid(16, 16)
    num_edges = edge_index.size(1)
    cluster = metis(edge_index, 256, 4, verbose=False,
                    edge_weight=torch.full((num_edges, ), 2**40 + 1),
                    node_weight=torch.arange(256) * 2**40 + 1)
    assert cluster.bincount(minlength=4).min() > 0
    node_weight, edge_weight = received[0]
    assert int(node_weight.sum()) <= 2**28 and int(node_weight.min()) >= 1
    assert int(edge_weight.sum()) <= 2**28 and int(edge_weight.min()) >= 1
