"""Projection and prediction heads, and the MLP builder they share."""

from __future__ import annotations

import pytest
import torch

from siamcollapse.models.heads import mlp, predictor, projector


def test_projector_ends_in_affine_free_bn_with_frozen_bias():
    head = projector(32, 64)
    assert isinstance(head[-1], torch.nn.BatchNorm1d) and not head[-1].affine
    assert not head[-2].bias.requires_grad
    assert head(torch.randn(8, 32)).shape == (8, 64)


def test_predictor_is_a_bottleneck():
    head = predictor(64, 16)
    assert head[0].out_features == 16 and head(torch.randn(8, 64)).shape == (8, 64)


def test_mlp_layers_and_optional_affine_free_last_bn():
    head = mlp([8, 16, 16, 4], last_bn=True)
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 16), (16, 4)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in head) == 2
    assert isinstance(head[-1], torch.nn.BatchNorm1d) and not head[-1].affine
    assert not linears[-1].bias.requires_grad
    plain = mlp([8, 16, 4])
    assert isinstance(plain[-1], torch.nn.Linear) and plain[-1].bias.requires_grad
    assert plain(torch.randn(5, 8)).shape == (5, 4)
    with pytest.raises(ValueError):
        mlp([8])


def test_mlp_without_last_bias():
    head = mlp([4, 8, 3], last_bias=False)
    assert head[-1].bias is None
    with_bn = mlp([4, 8, 3], last_bn=True, last_bias=False)
    assert isinstance(with_bn[-1], torch.nn.BatchNorm1d) and with_bn[-2].bias is None
