import pytest
import torch
from torch.nn import Linear

from torch_autoscale.nn import ScalableGNN, lipschitz_penalty


def test_zero_for_constant_function():
    h = torch.randn(50, 8)
    const = torch.randn(8)
    assert float(lipschitz_penalty(lambda x: const.expand_as(x), h)) == 0.0


def test_positive_and_scales_with_lipschitz_constant():
    h = torch.randn(200, 8)
    lin = Linear(8, 8, bias=False)
    torch.manual_seed(0)
    base = lipschitz_penalty(lin, h, std=0.1)
    assert base > 0
    for c in (2.0, 5.0):
        torch.manual_seed(0)  # the same noise
        scaled = lipschitz_penalty(lambda x, c=c: c * lin(x), h, std=0.1)
        assert torch.allclose(scaled, c * base, rtol=1e-5)
    # The identity map gives E||eps|| ≈ std * sqrt(d).
    torch.manual_seed(0)
    ident = lipschitz_penalty(lambda x: x, torch.randn(20000, 8), std=0.1)
    assert abs(float(ident) - 0.1 * 8**0.5) < 0.01


def test_gradient_reaches_parameters():
    lin = Linear(4, 4)
    lipschitz_penalty(lin, torch.randn(10, 4)).backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.bias.grad.abs().sum() < 1e-6  # a bias cancels out


def test_errors_and_empty():
    with pytest.raises(ValueError, match="'std'"):
        lipschitz_penalty(lambda x: x, torch.randn(3, 2), std=-1.0)
    assert float(lipschitz_penalty(lambda x: x, torch.empty(0, 3))) == 0.0


def test_reg_loss_of_scalable_gnn():
    class Model(ScalableGNN):
        def __init__(self, **kwargs):
            super().__init__(10, 4, num_layers=2, **kwargs)
            self.lin = Linear(4, 4)

        def forward(self, x):
            self.lipschitz(self.lin, x)
            return self.lin(x)

    x = torch.randn(10, 4)
    model = Model(reg_weight=0.5)
    model(x)
    assert model.reg_loss > 0
    torch.manual_seed(1)
    model(x)
    torch.manual_seed(1)
    expected = 0.5 * lipschitz_penalty(model.lin, x)
    assert torch.allclose(model.reg_loss, expected)
    model.eval()(x)
    assert float(model.reg_loss) == 0.0  # training only
    off = Model()
    off(x)
    assert float(off.reg_loss) == 0.0
    with pytest.raises(ValueError, match="'reg_weight'"):
        Model(reg_weight=-1.0)


def test_reg_weight_without_penalty_warns_once():
    class Model(ScalableGNN):
        def __init__(self):
            super().__init__(10, 4, num_layers=2, reg_weight=1.0)
            self.lin = Linear(4, 4)

        def forward(self, x):
            return self.lin(x)

    model = Model()
    with pytest.warns(UserWarning, match='records no Lipschitz penalty'):
        model(torch.randn(10, 4))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model(torch.randn(10, 4))


def test_precomputed_output_gives_the_same_penalty():
    lin = Linear(4, 4)
    h = torch.randn(10, 4)
    torch.manual_seed(3)
    a = lipschitz_penalty(lin, h)
    torch.manual_seed(3)
    b = lipschitz_penalty(lin, h, out=lin(h))
    assert torch.allclose(a, b)
