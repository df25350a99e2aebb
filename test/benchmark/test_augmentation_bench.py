r"""``benchmark/augmentation.py``: its ROC-AUC, its two trainers on a
synthetic stand-in, and its table (the real runs are
``benchmark/results/augmentation.md``)."""
import json
import os.path as osp

import torch

from torch_autoscale.partition import lpmetis, permute, sort_by_cluster
from torch_autoscale.testing import load_script
from torch_autoscale.transforms import CoarseEmbedding, PageRankRefine
from torch_autoscale.utils import homophilous_sbm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load():
    return load_script(osp.join(ROOT, 'benchmark', 'augmentation.py'),
                       'augmentation_bench')


def test_roc_auc_counts_ordered_pairs():
    bench = load()
    gen = torch.Generator().manual_seed(0)
    score = torch.randint(0, 6, (200, ), generator=gen).float()  # Ties.
    y = torch.rand(200, generator=gen) < 0.3
    pos, neg = score[y], score[~y]
    diff = pos.view(-1, 1) - neg.view(1, -1)
    want = float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())
    assert abs(bench.roc_auc(score, y) - want) < 1e-12
    assert bench.roc_auc(torch.arange(4.), torch.tensor([0, 0, 1, 1])) == 1
    assert bench.roc_auc(torch.ones(3), torch.ones(3)) != \
        bench.roc_auc(torch.ones(3), torch.ones(3))  # NaN: one class.


def test_both_trainers_learn_the_augmented_stand_in():
    bench = load()
    cfg = bench.training.load_config('gcn_amazon_computers')
    cfg = dict(cfg, num_parts=8, batch_size=2)
    data = homophilous_sbm(600, num_classes=4, num_features=8, seed=1)
    data.train_mask = torch.arange(600) % 3 == 0
    data.val_mask = torch.arange(600) % 3 == 1
    data.test_mask = torch.arange(600) % 3 == 2
    cluster, coarse = lpmetis(data.edge_index, 600, 8, seed=0,
                              verbose=False, return_coarse=True)
    data = CoarseEmbedding(coarse, dim=4)(data)
    data.cluster = cluster
    data = PageRankRefine(0.05)(data)
    del data.cluster, data.refined_out
    data.adj_t = bench.training.prepare_adj(data, cfg['adj'])
    perm, ptr = sort_by_cluster(cluster, 8)
    del data.edge_index
    data = permute(data, perm)
    for trainer in ('gas', 'cluster'):
        val, test, sec = bench.train(cfg, data, ptr, 4, 0, trainer, 30,
                                     False, False)
        assert val > 0.6 and test > 0.6, trainer  # Chance: 0.25.
        assert sec > 0
    # ROC-AUC on two classes:
    binary = data.clone()
    binary.y = (binary.y >= 2).long()
    val, test, _ = bench.train(cfg, binary, ptr, 2, 0, 'cluster', 20, True,
                               False)
    assert 0.6 < val <= 1 and 0.6 < test <= 1


def test_table_pairs_seeds_with_the_plain_run(tmp_path):
    bench = load()
    jsonl = tmp_path / 'augmentation.jsonl'
    base = dict(dataset='amazon-computers', partition='metis',
                trainer='gas', epochs=200, fraction=0.05, dim=16,
                metric='accuracy', sec=0.5, partition_sec=1.0, threads=1,
                commit='abcdef0123', torch='2.13.0', command='python x')
    runs = []
    for seed, (plain, aug) in enumerate([(0.80, 0.82), (0.81, 0.82),
                                         (0.79, 0.83)]):
        runs.append(dict(base, augmentation='none', seed=seed, val=0.8,
                         test=plain))
        runs.append(dict(base, augmentation='global', seed=seed, val=0.8,
                         test=aug, global_sec=2.0))
    jsonl.write_text(''.join(json.dumps(r) + '\n' for r in runs))
    table = bench.write_table(str(jsonl), str(tmp_path / 'augmentation.md'))
    none_row = [line for line in table.splitlines() if '| none |' in line]
    glob_row = [line for line in table.splitlines() if '| global |' in line]
    assert len(none_row) == len(glob_row) == 1
    # Paired: +2, +1, +4 points: mean 2.33, s.e. 0.88.
    assert '| +2.33 ± 0.88 |' in glob_row[0]
    assert '| 80.00 ± 1.00 |' in none_row[0]
    assert '| 2.00 |' in glob_row[0]
