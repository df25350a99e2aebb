import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_autoscale.segment import SegmentEncoder
from torch_autoscale.testing import random_graphs


def graphs(num_graphs=5, seed=0):
    return random_graphs(num_graphs, 3, 30, x_scale=10.0, seed=seed)


@pytest.mark.parametrize('conv', ['sage', 'gcn'])
def test_eval_mode_embeds_every_graph_on_its_own(conv):
    torch.manual_seed(0)
    encoder = SegmentEncoder(4, 16, conv=conv)
    data = graphs()
    encoder.train()
    for _ in range(3):  # Move the running statistics away from their start.
        encoder(Batch.from_data_list(data))
    encoder.eval()
    out = encoder(Batch.from_data_list(data))
    assert out.shape == (len(data), 16)
    alone = torch.cat([encoder(Batch.from_data_list([d])) for d in data])
    assert torch.allclose(out, alone, atol=1e-5)
    # A single graph without a batch vector gives the same row.
    assert torch.allclose(encoder(data[0]), out[:1], atol=1e-5)


def test_batch_norm_statistics_update_in_training_only():
    torch.manual_seed(0)
    encoder = SegmentEncoder(4, 8)
    assert len(encoder.norms) == 3  # Pre-MP linear and two MP layers.
    assert encoder.pre.bias is None  # Batch normalization shifts instead.
    batch = Batch.from_data_list(graphs())
    before = encoder.norms[0].module.running_mean.clone()
    encoder.eval()
    encoder(batch)
    assert torch.equal(encoder.norms[0].module.running_mean, before)
    encoder.train()
    encoder(batch)
    assert not torch.equal(encoder.norms[0].module.running_mean, before)
    # A training batch of a single node (a one-node segment) is normalized
    # with the running statistics, as in evaluation.
    one = Data(x=torch.randn(1, 4), edge_index=torch.empty(2, 0,
                                                          dtype=torch.long),
               num_nodes=1)
    out = encoder(one)
    assert torch.allclose(out, encoder.eval()(one))


@pytest.mark.parametrize('pool', ['sum', 'mean'])
def test_unit_node_embeddings_bound_the_pooled_norm(pool):
    torch.manual_seed(0)
    encoder = SegmentEncoder(4, 8, pool=pool).eval()
    data = graphs()
    out = encoder(Batch.from_data_list(data))
    norms = out.norm(dim=-1)
    sizes = torch.tensor([float(d.num_nodes) for d in data])
    bound = sizes if pool == 'sum' else torch.ones_like(sizes)
    assert bool((norms <= bound + 1e-4).all())
    # Without the normalization the (large) inputs break the bound.
    loose = SegmentEncoder(4, 8, pool=pool, batch_norm=False,
                           normalize=False).eval()
    assert not bool((loose(Batch.from_data_list(data)).norm(dim=-1)
                     <= bound).all())


def test_plain_encoder_has_no_batch_norm():
    encoder = SegmentEncoder(4, 8, batch_norm=False, normalize=False,
                             pool='mean')
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in encoder.modules())
    assert encoder.pre.bias is not None
    assert 'batch_norm=False' in repr(encoder)
    encoder.reset_parameters()


def test_errors():
    with pytest.raises(ValueError, match="'conv'"):
        SegmentEncoder(4, 8, conv='gat')
    with pytest.raises(ValueError, match="'num_layers'"):
        SegmentEncoder(4, 8, num_layers=0)
    with pytest.raises(ValueError, match="'pool'"):
        SegmentEncoder(4, 8, pool='max')
    with pytest.raises(ValueError, match="needs node features 'x'"):
        SegmentEncoder(4, 8)(Data(edge_index=torch.empty(2, 0,
                                                         dtype=torch.long),
                                  num_nodes=3))
