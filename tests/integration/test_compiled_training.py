"""pretrain.compile: the training step through torch.compile trains the weights the eager step
trains, and writes the same plain checkpoint (no compile wrapper in its keys). On a CPU the
test traces with the ``aot_eager`` backend: dynamo captures forward and backward exactly as
with inductor, without inductor's C++ code generation (about 45 s for one small run here); the
CUDA run with inductor is the GPU check (`make test-gpu`, docs/testing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siamcollapse.layout import RunDir
from siamcollapse.training import loop
from siamcollapse.training.checkpoint import load_backbone

from .test_stages import SIMSIAM_AND_MOCOV3, pretrain_args, run_cli, whole_subset_experiment


@pytest.mark.parametrize(("setting", "cuda", "expected"), [
    ("auto", True, True), ("auto", False, False), (True, False, True), (False, True, False)])
def test_auto_compiles_on_cuda_only_and_true_or_false_decide_everywhere(setting, cuda, expected):
    assert loop.compiles(setting, cuda) is expected


def test_a_compiled_step_trains_the_weights_the_eager_step_trains(tiny_dataset: Path, tmp_path: Path, monkeypatch,
                                                                   capsys):
    """MoCo-v3: a momentum encoder updated after each step, and a contrastive loss in fp32."""
    run = "moco-100pct"
    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    weights, logs = {}, {}
    for setting in (False, True):
        out = tmp_path / str(setting)
        config, subset, _ = whole_subset_experiment(tiny_dataset, out, {**SIMSIAM_AND_MOCOV3,
                                                                        "pretrain": {"compile": setting}})
        assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, out / run)) == 0
        logs[setting] = capsys.readouterr().out
        backbone, _ = load_backbone(RunDir(out / run).checkpoint)  # a plain backbone's keys, compiled or not
        weights[setting] = backbone.state_dict()
    assert ", compiled (aot_eager)" in logs[True] and ", compiled (" not in logs[False]
    assert weights[True].keys() == weights[False].keys()
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=1e-4, atol=1e-5, msg=name)
