"""The weights' fingerprint: equal weights, equal hash (module or state dict); a changed weight changes it."""

from __future__ import annotations

import torch

from siamcollapse.fingerprint import state_fingerprint, tensors_fingerprint
from siamcollapse.models.backbones import build_backbone


def test_fingerprint_changes_when_a_weight_changes():
    net = build_backbone("resnet18", 8)
    before = state_fingerprint(net)
    with torch.no_grad():
        net.conv1.weight[0, 0, 0, 0] += 1
    assert state_fingerprint(net) != before


def test_a_module_and_its_state_dict_have_one_fingerprint_whatever_the_order():
    net = build_backbone("resnet18", 8)
    state = net.state_dict()
    assert tensors_fingerprint(dict(reversed(list(state.items())))) == state_fingerprint(net)
    assert tensors_fingerprint({k: v.clone() for k, v in state.items()}) == state_fingerprint(net)
