"""LARS and the optimiser factory."""

from __future__ import annotations

import pytest
import torch

from siamcollapse.optim.optimizers import LARS, build_optimizer


def _param(values: torch.Tensor, grad: torch.Tensor) -> torch.nn.Parameter:
    param = torch.nn.Parameter(values.clone())
    param.grad = grad.clone()
    return param


def test_first_step_scales_a_matrix_update_by_the_trust_ratio():
    lr, wd, trust = 0.5, 0.1, 0.02
    w, g = torch.randn(4, 3), torch.randn(4, 3)
    param = _param(w, g)
    LARS([param], lr=lr, weight_decay=wd, momentum=0.9, trust_coefficient=trust).step()
    direction = g + wd * w
    expected = w - lr * (trust * w.norm() / direction.norm()) * direction
    torch.testing.assert_close(param.detach(), expected)
    # the step's size is lr * trust * |w|, whatever the gradient's scale
    assert float((param.detach() - w).norm()) == pytest.approx(lr * trust * float(w.norm()), rel=1e-5)


def test_vectors_get_plain_momentum_sgd_without_weight_decay():
    w, grads = torch.randn(5), [torch.randn(5) for _ in range(3)]
    lars_param, sgd_param = _param(w, grads[0]), _param(w, grads[0])
    lars = LARS([lars_param], lr=0.1, weight_decay=0.5, momentum=0.9)
    sgd = torch.optim.SGD([sgd_param], lr=0.1, momentum=0.9, weight_decay=0.0)
    for g in grads:
        lars_param.grad, sgd_param.grad = g.clone(), g.clone()
        lars.step()
        sgd.step()
    torch.testing.assert_close(lars_param.detach(), sgd_param.detach())


def test_without_the_1d_exclusion_vectors_are_adapted_and_decayed_too():
    # apex LARC, as the authors' linear probe uses it, adapts every parameter
    lr, wd, trust = 0.5, 0.1, 0.02
    w, g = torch.randn(5), torch.randn(5)
    param = _param(w, g)
    LARS([param], lr=lr, weight_decay=wd, momentum=0.9, trust_coefficient=trust, exclude_1d=False).step()
    direction = g + wd * w
    torch.testing.assert_close(param.detach(), w - lr * (trust * w.norm() / direction.norm()) * direction)


def test_momentum_accumulates_the_adapted_matrix_updates():
    lr, wd, trust, momentum = 0.1, 0.01, 0.001, 0.9
    w, g1, g2 = torch.randn(3, 3), torch.randn(3, 3), torch.randn(3, 3)
    param = _param(w, g1)
    optimizer = LARS([param], lr=lr, weight_decay=wd, momentum=momentum, trust_coefficient=trust)
    optimizer.step()

    def adapted(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        direction = grad + wd * weight
        return trust * weight.norm() / direction.norm() * direction

    buffer = adapted(w, g1)
    w1 = w - lr * buffer
    param.grad = g2.clone()
    optimizer.step()
    buffer = momentum * buffer + adapted(w1, g2)
    torch.testing.assert_close(param.detach(), w1 - lr * buffer)


def test_a_zero_matrix_keeps_the_plain_learning_rate():
    g = torch.randn(2, 2)
    param = _param(torch.zeros(2, 2), g)
    LARS([param], lr=0.3, weight_decay=0.1, momentum=0.9).step()
    torch.testing.assert_close(param.detach(), -0.3 * g)


def test_parameters_without_gradient_are_left_alone():
    frozen = torch.nn.Parameter(torch.randn(3, 3))
    before = frozen.detach().clone()
    LARS([frozen], lr=0.1).step()
    assert torch.equal(frozen.detach(), before)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        LARS([torch.nn.Parameter(torch.zeros(1))], lr=-1.0)
    with pytest.raises(ValueError):
        LARS([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=1.0)


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("lars", LARS), ("adamw", torch.optim.AdamW)])
def test_build_optimizer_picks_the_named_optimizer_with_the_settings(name, cls):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "fix_lr": False},
              {"params": [torch.nn.Parameter(torch.zeros(2))], "fix_lr": True}]
    optimizer = build_optimizer(groups, {"optimizer": name, "weight_decay": 0.25, "momentum": 0.8}, lr=0.3)
    assert type(optimizer) is cls
    assert [g["lr"] for g in optimizer.param_groups] == [0.3, 0.3]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.25, 0.25]
    assert [g["fix_lr"] for g in optimizer.param_groups] == [False, True]  # the loop's marker survives
    if name != "adamw":
        assert optimizer.param_groups[0]["momentum"] == 0.8


def test_build_optimizer_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}], {"optimizer": "adam", "weight_decay": 0,
                                                                                "momentum": 0.9}, lr=0.1)
