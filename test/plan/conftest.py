import pytest

from torch_autoscale.plan import ModelSpec
from torch_autoscale.utils import homophilous_sbm


@pytest.fixture(scope='module')
def graph():
    return homophilous_sbm(3000, seed=0)


@pytest.fixture(scope='module')
def spec(graph):
    return ModelSpec(3, graph.num_features, 64, int(graph.y.max()) + 1)
