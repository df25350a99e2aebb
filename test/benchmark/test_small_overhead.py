r"""The history-access decomposition of ``benchmark/small/overhead.py``: its
"no history" mode really does no history access and otherwise computes what
GAS computes."""
import os.path as osp

import torch

from torch_autoscale.testing import load_script

HERE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'benchmark', 'small')


def load():
    # overhead.py imports training.py from its own folder.
    return load_script(osp.join(HERE, 'overhead.py'), 'small_overhead')


def stand_in(training, cfg):
    r"""The synthetic graph of the config tests, clustered for :obj:`cfg`."""
    path = osp.join(osp.dirname(osp.abspath(__file__)),
                    'test_small_configs.py')
    return load_script(path, 'test_small_configs').stand_in(training, cfg)


def stand_in_config(bench, name='gcn_amazon_computers'):
    cfg = bench.training.load_config(name)
    cfg['num_parts'], cfg['batch_size'] = 8, 4
    return cfg


def test_no_history_mode_skips_histories_only():
    bench = load()
    cfg = stand_in_config(bench)
    data, ptr = stand_in(bench.training, cfg)

    gas = bench.trainer('gas', cfg, data, ptr, 4, seed=0)
    plain = bench.trainer('no_history', cfg, data, ptr, 4, seed=0)
    emb = [h.emb.clone() for h in plain.model.histories]
    plain.epoch()
    gas.epoch()
    # No push: the histories keep what layer-wise inference wrote.
    for before, h in zip(emb, plain.model.histories):
        assert torch.equal(before, h.emb)
    assert any(not torch.equal(before, h.emb)
               for before, h in zip(emb, gas.model.histories))

    # With zero histories, GAS and "no history" compute the same forward.
    batch = next(iter(gas.loader))
    for h in gas.model.histories:
        h.emb.zero_()
    gas.model.eval()
    plain.model.eval()
    plain.model.load_state_dict(gas.model.state_dict())
    with torch.no_grad():
        a = gas.model(batch.data.x, batch.data.adj_t, batch)
        b = plain.model(batch.data.x, batch.data.adj_t, batch)
    assert torch.allclose(a, b, atol=1e-5)


def test_measure_and_table():
    bench = load()
    cfg = stand_in_config(bench, 'appnp_coauthor_cs')
    data, ptr = stand_in(bench.training, cfg)
    result = bench.measure(cfg, data, ptr, 4, epochs=2, warmup=1)
    timed = {mode: len(v) for mode, v in result['seconds'].items()}
    assert timed == {mode: 2 for mode in bench.MODES}  # Epochs, per mode.
    # Every node is in one mini-batch, halo nodes in more.
    assert result['rows_per_epoch'] >= 1.0

    result['seconds'] = dict(full=[0.1, 0.2, 0.3], gas=[0.4, 0.4, 9.0],
                             no_history=[0.3, 0.35, 0.4])
    _, body = bench.table([result])
    text = '\n'.join(body)
    # Medians 0.2, 0.4 and 0.35.
    assert (f"| APPNP | coauthor-cs | 2 | 0.2000 | 0.4000 | 0.3500 | 2.00 | "
            f"1.14 | 1.75 | {result['rows_per_epoch']:.2f} |") in text
