import os.path as osp

from torch_autoscale.testing import load_script

PATH = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'cpu_malloc.py')


def test_table_takes_medians_and_ratios():
    bench = load_script(PATH, 'cpu_malloc')
    runs = dict(default=[dict(gas=0.6, full=0.3), dict(gas=0.5, full=0.25),
                         dict(gas=9.0, full=0.2)],
                tuned=[dict(gas=0.4, full=0.2), dict(gas=0.4, full=0.2),
                       dict(gas=0.3, full=0.1)])
    records = [dict(config='gcn_cora', setting=setting, repeat=i, **r)
               for setting, rs in runs.items() for i, r in enumerate(rs)]
    _, body = bench.table(records)
    text = '\n'.join(body)
    # Medians: GAS 0.6 -> 0.4, full 0.25 -> 0.2.
    assert ('| gcn_cora | 0.6000 | 0.4000 | 0.2500 | 0.2000 | 0.67 | 0.80 | '
            '2.40 | 2.00 |') in text
    assert 'MALLOC_MMAP_THRESHOLD_=4294967296' in text
