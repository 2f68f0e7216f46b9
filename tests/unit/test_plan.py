"""The experiment plan: per-method settings, hybrid and distillation runs, and their errors."""

from __future__ import annotations

import pytest

from siamcollapse import plan
from siamcollapse.config import SCHEMA_PATH, deep_merge, schema_defaults, validate_config
from siamcollapse.errors import UserInputError

SP = {"fractions": [1.0], "pretrain": {"strategy": "single-pass"}}
HYBRID = {"fractions": [1.0], "pretrain": {"strategy": "hybrid", "switch_epoch": 4, "hybrid_from": "sp"}}


def config_with(**sections):
    return validate_config(deep_merge({"pretrain": {"epochs": 20}}, sections), SCHEMA_PATH)


def test_a_runs_settings_are_general_then_its_methods_then_its_groups():
    config = config_with(runs={"moco": {"fractions": [1.0], "pretrain": {"method": "mocov3", "base_lr": 0.3}}},
                         methods={"mocov3": {"temperature": 0.2}})
    run = plan.expand_runs(config)["moco-100pct"]
    defaults = schema_defaults()["methods"]["mocov3"]
    assert run.pretrain["base_lr"] == 0.3 and run.pretrain["temperature"] == 0.2  # group, then config
    assert run.pretrain["optimizer"] == defaults["optimizer"] == "lars"  # the paper's default
    assert run.pretrain["epochs"] == 20 and "queue_size" not in run.pretrain
    assert run.augment["crop_min_scale"] == defaults["augment"]["crop_min_scale"]  # MoCo-v3's own crops
    assert run.augment["flip_p"] == config["augment"]["flip_p"]


def test_a_setting_of_another_method_names_the_key():
    config = config_with(runs={"a": {"fractions": [1.0], "pretrain": {"queue_size": 5}}})
    with pytest.raises(UserInputError, match=r"runs\.a\.pretrain\.queue_size.*simsiam"):
        plan.expand_runs(config)


def test_only_the_keys_of_a_backbone_family_are_kept():
    config = config_with(runs={"v": {"fractions": [1.0], "model": {"arch": "vit_small", "depth": 3}}},
                         dataset={"image_size": 32})
    vit = plan.expand_runs(config)["v-100pct"]
    assert vit.model == {"arch": "vit_small", "patch_size": 16, "depth": 3, "heads": 6, "freeze_patch_embed": True,
                         "image_size": 32}
    assert vit.info()["arch"] == "vit_small-d3"


def test_a_hybrid_continues_the_single_pass_run_of_its_group_and_that_run_snapshots():
    runs = plan.expand_runs(config_with(runs={"sp": SP, "hy": HYBRID}))
    assert plan.initial_state(runs, "hy-100pct") == ("sp-100pct", 4)
    assert plan.snapshot_epochs(runs, "sp-100pct") == [4]
    assert plan.initial_state(runs, "sp-100pct") == ("sp-100pct", 4)  # the rest of the run continues its snapshot
    assert plan.initial_state(runs, "sp-100pct", until_epoch=4) is None  # the first segment starts afresh
    assert runs["hy-100pct"].info()["switch_epoch"] == 4


@pytest.mark.parametrize("hybrid, message", [
    ({"switch_epoch": None}, "needs switch_epoch"),
    ({"switch_epoch": 20}, "needs switch_epoch"),
    ({"hybrid_from": "nope"}, "has no single-pass run"),
    ({"seed": 3}, "differ in seed"),
])
def test_a_hybrid_that_cannot_continue_its_source_names_the_key(hybrid, message):
    spec = deep_merge(HYBRID, {"pretrain": hybrid})
    with pytest.raises(UserInputError, match=message):
        plan.expand_runs(config_with(runs={"sp": SP, "hy": spec}))


@pytest.mark.parametrize("pretrain, key", [
    ({"warmup_epochs": 20}, "warmup_epochs"),
    ({"strategy": "single-pass", "chunks": 21}, "chunks"),
    ({"strategy": "last", "last_chunks": 21}, "last_chunks"),
])
def test_impossible_schedules_name_the_key(pretrain, key):
    with pytest.raises(UserInputError, match=rf"runs\.a\.pretrain\.{key}"):
        plan.expand_runs(config_with(runs={"a": {"fractions": [1.0], "pretrain": pretrain}}))


def test_a_student_is_a_run_distilled_from_its_teacher():
    config = config_with(runs={"t": {"fractions": [1.0], "model": {"arch": "resnet50"}}},
                         distillations={"s": {"teacher": "t-100pct", "model": {"arch": "resnet18"}}})
    runs = plan.expand_runs(config)
    student = runs["s"]
    assert student.method == plan.DISTILL and student.teacher is runs["t-100pct"]
    assert student.pretrain["base_lr"] == config["methods"]["distill"]["base_lr"]
    assert student.info()["teacher_arch"] == "resnet50" and student.info()["arch"] == "resnet18"
    assert {"random-init-resnet18", "random-init-resnet50"} <= set(runs)  # a floor for both
    assert "distillations.s" in plan.stage_config_keys(config, "pretrain", student)


def test_a_student_of_a_missing_teacher_names_the_key():
    config = config_with(distillations={"s": {"teacher": "ghost", "model": {"arch": "resnet18"}}})
    with pytest.raises(UserInputError, match=r"distillations\.s\.teacher.*ghost"):
        plan.expand_runs(config)


def test_a_runs_stage_keys_include_only_its_own_methods_settings():
    config = config_with(runs={"a": {"fractions": [1.0]}, "b": {"fractions": [1.0], "pretrain": {"method": "byol"}}})
    runs = plan.expand_runs(config)
    assert "methods.simsiam" in plan.stage_config_keys(config, "pretrain", runs["a-100pct"])
    assert "methods.byol" not in plan.stage_config_keys(config, "pretrain", runs["a-100pct"])
    assert "methods.byol" in plan.stage_config_keys(config, "pretrain", runs["b-100pct"])
