import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_undirected

from torch_autoscale.loader import (
    EvalSubgraphLoader,
    PartitionedData,
    SubgraphLoader,
)
from torch_autoscale.nn.models import GCN
from torch_autoscale.partition import partition, permute, sort_by_cluster
from torch_autoscale.utils import csr_adj_t


def random_graph(num_nodes=80, num_edges=40, seed=0):
    r"""A path of :obj:`num_nodes` nodes in shuffled order plus
    :obj:`num_edges` random edges: clusters to find, none in the input
    order."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_nodes, generator=gen)
    path = torch.stack([order[:-1], order[1:]])
    extra = torch.randint(num_nodes, (2, num_edges), generator=gen)
    edge_index = to_undirected(torch.cat([path, extra], dim=1),
                               num_nodes=num_nodes)
    return Data(x=torch.randn(num_nodes, 6, generator=gen),
                y=torch.randint(3, (num_nodes, ), generator=gen),
                train_mask=torch.rand(num_nodes, generator=gen) < 0.5,
                edge_index=edge_index)


def dense_adj(adj_t):
    return adj_t.to_dense()


@pytest.mark.parametrize('method', ['metis', 'random', 'contiguous'])
def test_layout_matches_step_by_step(method):
    data = random_graph()
    pdata = PartitionedData(data, 4, method=method, normalize='gcn')
    assert 'edge_index' in data and 'adj_t' not in data  # input untouched
    assert 'edge_index' not in pdata.data
    assert pdata.data.adj_t.layout == torch.sparse_csr

    cluster = partition(data, 4, method=method, seed=0)
    perm, ptr = sort_by_cluster(cluster, 4)
    ref = data.clone()
    ref.adj_t, _ = gcn_norm(csr_adj_t(ref.edge_index, ref.num_nodes),
                            add_self_loops=True)
    del ref.edge_index
    ref = permute(ref, perm)
    assert torch.equal(pdata.perm, perm)
    assert torch.equal(pdata.ptr, ptr)
    assert torch.equal(pdata.cluster, cluster)
    assert torch.equal(dense_adj(pdata.data.adj_t), dense_adj(ref.adj_t))
    for key in ('x', 'y', 'train_mask'):
        assert torch.equal(pdata.data[key], ref[key])
    assert len(pdata) == pdata.num_parts == 4
    assert pdata.num_nodes == data.num_nodes
    assert repr(pdata) == (f"PartitionedData(num_nodes=80, num_parts=4, "
                           f"method='{method}', normalize='gcn')")


def test_round_trip_and_masks():
    data = random_graph()
    pdata = PartitionedData(data, 5)
    perm = pdata.perm
    t = torch.randn(data.num_nodes, 3)
    assert torch.equal(pdata.to_original(pdata.to_permuted(t)), t)
    assert torch.equal(pdata.to_permuted(pdata.to_original(t)), t)
    # Along another dimension:
    assert torch.equal(pdata.to_original(pdata.to_permuted(t.t(), dim=1),
                                         dim=1), t.t())
    # Labels and masks of the input land where `data` has them:
    assert torch.equal(pdata.to_permuted(data.y), pdata.data.y)
    assert torch.equal(pdata.to_permuted(data.train_mask),
                       pdata.data.train_mask)
    assert torch.equal(pdata.to_original(pdata.data.x), data.x)
    # Node indices map through inv_perm:
    idx = torch.tensor([0, 7, 42])
    assert torch.equal(perm[pdata.inv_perm[idx]], idx)
    assert torch.equal(pdata.data.y[pdata.inv_perm[idx]], data.y[idx])
    # Sparse node features:
    x = data.x.relu().to_sparse_csr()
    assert torch.equal(pdata.to_permuted(x).to_dense(), pdata.data.x.relu())


def test_mini_inference_equals_full_batch_in_original_order():
    data = random_graph(num_nodes=120, num_edges=60)
    pdata = PartitionedData(data, 6, normalize='gcn')
    model = GCN(data.num_nodes, 6, 16, 3, num_layers=3).eval()
    out = model.mini_inference(pdata.eval_loader(batch_size=2),
                               progress=False)
    adj_t, _ = gcn_norm(csr_adj_t(data.edge_index, data.num_nodes),
                        add_self_loops=True)
    with torch.no_grad():
        expected = model(data.x, adj_t)  # Unpermuted, full batch.
    assert torch.allclose(pdata.to_original(out), expected, atol=1e-5)
    # Accuracy against the permuted labels equals that in the input order:
    acc = (out.argmax(-1) == pdata.data.y).float().mean()
    acc_orig = (pdata.to_original(out).argmax(-1) == data.y).float().mean()
    assert acc == acc_orig


def test_loaders_cover_every_node():
    data = random_graph()
    pdata = PartitionedData(data, 7)
    loader = pdata.loader(batch_size=2)
    assert isinstance(loader, SubgraphLoader)
    for make in (lambda: loader, lambda: pdata.eval_loader(batch_size=3)):
        seen = torch.cat([b.n_id[:b.batch_size] for b in make()])
        assert torch.equal(seen.sort().values, torch.arange(data.num_nodes))
    assert isinstance(pdata.eval_loader(), EvalSubgraphLoader)
    first = [b.offset.tolist() for b in pdata.eval_loader(batch_size=3)]
    assert first == [b.offset.tolist() for b in pdata.eval_loader(3)]


def test_given_cluster_and_edge_attributes():
    data = random_graph()
    cluster = partition(data, 4)
    data.edge_weight = torch.rand(data.num_edges)
    data.edge_attr = torch.randn(data.num_edges, 2)
    pdata = PartitionedData(data, 4, cluster=cluster)
    assert pdata.method is None
    assert 'edge_weight' not in pdata.data
    # Values of adj_t are the weights; edge attributes follow the entries.
    perm, inv = pdata.perm, pdata.inv_perm
    adj_t = pdata.data.adj_t
    row = torch.repeat_interleave(torch.arange(data.num_nodes),
                                  adj_t.crow_indices().diff())
    src, dst = perm[adj_t.col_indices()], perm[row]  # Original ids.
    key = data.edge_index[1] * data.num_nodes + data.edge_index[0]
    pos = {int(k): i for i, k in enumerate(key)}
    index = torch.tensor([pos[int(d) * data.num_nodes + int(s)]
                          for s, d in zip(src, dst)])
    assert torch.equal(adj_t.values(), data.edge_weight[index])
    assert torch.equal(pdata.data.edge_attr, data.edge_attr[index])
    assert torch.equal(inv[perm], torch.arange(data.num_nodes))

    with pytest.raises(ValueError, match="edge attributes 'edge_attr'"):
        PartitionedData(data, 4, cluster=cluster, normalize='gcn')


def test_adj_t_input():
    data = random_graph()
    ref = PartitionedData(data, 4, normalize='gcn')
    sparse = Data(x=data.x, y=data.y,
                  adj_t=csr_adj_t(data.edge_index, data.num_nodes))
    pdata = PartitionedData(sparse, 4, normalize='gcn', cluster=ref.cluster)
    assert torch.allclose(dense_adj(pdata.data.adj_t),
                          dense_adj(ref.data.adj_t))


def test_bad_arguments():
    data = random_graph(num_nodes=10, num_edges=5)
    with pytest.raises(ValueError, match=r"'num_parts' must lie in \[1, 10\]"):
        PartitionedData(data, 11)
    with pytest.raises(ValueError, match=r"'num_parts' must lie in \[1, 10\]"):
        PartitionedData(data, 0)
    with pytest.raises(ValueError, match=r"'num_parts' must lie in"):
        PartitionedData(data, -3)
    with pytest.raises(ValueError, match="'num_parts' must be an integer"):
        PartitionedData(data, 2.5)
    with pytest.raises(ValueError, match="unknown partition method 'kmeans'"):
        PartitionedData(data, 2, method='kmeans')
    with pytest.raises(ValueError, match="unknown normalization 'sym'"):
        PartitionedData(data, 2, normalize='sym')
    with pytest.raises(ValueError, match="must be a 'torch_geometric"):
        PartitionedData(data.edge_index, 2)
    with pytest.raises(ValueError, match="neither 'edge_index' nor 'adj_t'"):
        PartitionedData(Data(x=data.x), 2)
    with pytest.raises(ValueError, match=r"'cluster' must be a tensor of "
                       r"shape \[10\]"):
        PartitionedData(data, 2, cluster=torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside of \[0, 2\)"):
        PartitionedData(data, 2, cluster=torch.full((10, ), 2))
    with pytest.raises(ValueError, match="have no effect"):
        PartitionedData(data, 2, cluster=torch.zeros(10, dtype=torch.long),
                        num_iters=3)
    with pytest.raises(ValueError, match="cluster, coarse = lpmetis"):
        PartitionedData(data, 2, method='lpmetis', return_coarse=True)

    pdata = PartitionedData(data, 2, method='contiguous')
    with pytest.raises(ValueError, match=r"PartitionedData.to_original: "
                       r"'out' has 9 entries .* 10 nodes"):
        pdata.to_original(torch.randn(9, 4))
    with pytest.raises(ValueError, match=r"PartitionedData.to_permuted: "
                       r"'t' has 4 entries along dimension 1"):
        pdata.to_permuted(torch.randn(10, 4), dim=1)
    with pytest.raises(ValueError, match="'dim' \\(2\\) is not a dimension"):
        pdata.to_original(torch.randn(10, 4), dim=2)
    with pytest.raises(ValueError, match="must be a tensor"):
        pdata.to_original([0] * 10)


def test_step_by_step_docs_equal_partitioned_data():
    r"""The quickstart's "Step by step" code builds what PartitionedData
    builds."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'docs', 'source', 'quickstart.rst')) as f:
        text = f.read().split('Step by step\n', 1)[1]
    block = text.split('.. code-block:: python\n', 1)[1]
    lines = []
    for line in block.split('\n')[1:]:
        if line and not line.startswith('   '):
            break
        lines.append(line)
    data = random_graph()
    scope = {'data': data.clone()}
    exec(compile(textwrap.dedent('\n'.join(lines)), 'step_by_step', 'exec'),
         scope)
    pdata = PartitionedData(data, 40, normalize='gcn')
    assert torch.equal(scope['ptr'], pdata.ptr)
    assert torch.equal(scope['perm'].argsort(), pdata.inv_perm)
    assert torch.equal(scope['data'].adj_t.to_dense(),
                       pdata.data.adj_t.to_dense())
    assert torch.equal(scope['data'].x, pdata.data.x)


# Written from the docs alone; run as a script outside of the repository.
CORA_SCRIPT = r'''"""GCN with GAS on Cora through PartitionedData, evaluated
against the labels and masks of the original graph."""
import sys

import torch
import torch.nn.functional as F
from torch_geometric.datasets import Planetoid

from torch_autoscale.loader import PartitionedData
from torch_autoscale.nn.models import GCN

root = sys.argv[1]
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
torch.manual_seed(0)
data = Planetoid(f'{root}/Planetoid', 'Cora')[0]

pdata = PartitionedData(data, num_parts=40, normalize='gcn')
loader = pdata.loader(batch_size=10, shuffle=True)
eval_loader = pdata.eval_loader(batch_size=10)
model = GCN(data.num_nodes, data.num_features, 16, 7, num_layers=2,
            dropout=0.5, drop_input=True)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

model.mini_inference(eval_loader, progress=False)
for epoch in range(epochs):
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch.data.x, batch.data.adj_t, batch)
        bs = batch.batch_size
        mask = batch.data.train_mask[:bs]
        if not bool(mask.any()):
            continue
        loss = F.cross_entropy(out[mask], batch.data.y[:bs][mask])
        loss.backward()
        optimizer.step()

out = model.mini_inference(eval_loader, progress=False)
if 'mistake' in sys.argv:  # Permuted outputs against the input's labels.
    print((out.argmax(-1) == data.y)[data.test_mask].float().mean())
out = pdata.to_original(out)  # now row i is node i of `data`
pred = out.argmax(-1)
test_acc = float((pred == data.y)[data.test_mask].float().mean())
val_acc = float((pred == data.y)[data.val_mask].float().mean())
# The same in the permuted order, without mapping:
out_p = pdata.to_permuted(out)
perm_acc = float((out_p.argmax(-1) == pdata.data.y)[pdata.data.test_mask]
                 .float().mean())
print(f'val {val_acc:.4f} test {test_acc:.4f} (permuted {perm_acc:.4f})')
'''


def test_script_outside_the_repository_trains_cora(cora_root, tmp_path):
    path = tmp_path / 'train_cora.py'
    path.write_text(CORA_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1')  # A tiny graph.
    proc = subprocess.run([sys.executable, str(path), cora_root, '50'],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    val, test, permuted = (float(words[1]), float(words[3]),
                           float(words[5].strip(')')))
    assert val > 0.7 and test > 0.75  # GCN on Cora: about 0.8
    assert permuted == test  # Both orders give the same accuracy.


def test_script_outside_the_repository_comparing_orders_fails(cora_root,
                                                             tmp_path):
    path = tmp_path / 'train_cora.py'
    path.write_text(CORA_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(path), cora_root, '1', 'mistake'], cwd=tmp_path,
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'NodeOrderError' in proc.stderr
    assert 'pdata.to_original(out)' in proc.stderr
