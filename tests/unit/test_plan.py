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
    heads = schema_defaults()["model"]["heads"]  # ViT-Small's own (the schema's default)
    assert vit.model == {"arch": "vit_small", "patch_size": 16, "depth": 3, "heads": heads, "freeze_patch_embed": True,
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


# --- seeds and floors ----------------------------------------------------------------------


def test_a_group_with_seeds_has_one_run_per_fraction_and_seed_and_keeps_its_ordering():
    config = config_with(runs={"a": {"fractions": [0.5, 1.0], "seeds": [3, 1], "pretrain": {"seed": 7}},
                               "b": {"fractions": [1.0]}})
    runs = plan.expand_runs(config)
    seeded = {name: run for name, run in runs.items() if run.group == "a"}
    assert set(seeded) == {plan.run_name(f"a-{plan.fraction_tag(f)}", s) for f in (0.5, 1.0) for s in (3, 1)}
    assert set(seeded) == {"a-50pct-s3", "a-50pct-s1", "a-100pct-s3", "a-100pct-s1"}
    one = runs["a-100pct-s1"]
    assert one.pretrain["seed"] == one.seed == 1 and one.info()["seed"] == 1
    assert one.pretrain["ordering_seed"] == 7  # the data ordering stays the group's
    assert one.info()["seed_group"] == "a-100pct" and runs["a-100pct-s3"].info()["seed_group"] == "a-100pct"
    # a group without seeds keeps today's name and settings (no ordering seed: nothing reruns)
    assert runs["b-100pct"].seed == 0 and "ordering_seed" not in runs["b-100pct"].pretrain
    assert runs["b-100pct"].info()["seed_group"] == "b-100pct"


def test_vary_ordering_lets_each_seed_draw_its_own_ordering():
    config = config_with(runs={"a": {"fractions": [1.0], "seeds": [0, 1], "vary_ordering": True}})
    assert "ordering_seed" not in plan.expand_runs(config)["a-100pct-s1"].pretrain


def test_the_chunk_ordering_follows_the_ordering_seed_not_the_pretraining_seed():
    import torch

    from siamcollapse.training.strategies import epoch_pool

    config = config_with(runs={"a": {"fractions": [1.0], "seeds": [0, 1], "pretrain": {"strategy": "single-pass"}}})
    runs = plan.expand_runs(config)
    indices = torch.arange(100)
    pools = [epoch_pool(runs[f"a-100pct-s{s}"].pretrain, indices, 3) for s in (0, 1)]
    assert torch.equal(pools[0], pools[1])
    varied = {**runs["a-100pct-s1"].pretrain}
    del varied["ordering_seed"]
    assert not torch.equal(pools[0], epoch_pool(varied, indices, 3))


@pytest.mark.parametrize("seeds, message", [
    ([], "should be non-empty|at least one"),
    ([0, -1], "minimum|non-negative"),
    ([1, 1], "non-unique|twice"),
    ([0.5], "integer"),
])
def test_bad_seeds_name_the_key_at_validation(seeds, message):
    with pytest.raises(UserInputError, match=rf"runs\.a\.seeds.*({message})"):
        config_with(runs={"a": {"fractions": [1.0], "seeds": seeds}})


@pytest.mark.parametrize("seeds, message", [([], "at least one"), ([2, -1], "non-negative"), ([4, 4], "seed 4 is listed twice")])
def test_bad_seeds_name_the_key_in_the_plan_too(seeds, message):
    """A config that skipped schema validation still fails before any run is planned."""
    config = config_with(runs={"a": {"fractions": [1.0]}})
    config["runs"]["a"]["seeds"] = seeds
    with pytest.raises(UserInputError, match=rf"config: key 'runs\.a\.seeds': .*{message}"):
        plan.expand_runs(config)


def test_bad_random_init_seeds_name_the_key():
    with pytest.raises(UserInputError, match=r"random_init_seeds"):
        config_with(random_init_seeds=[1, 1])


def test_a_seeded_hybrid_continues_the_single_pass_run_of_its_own_seed():
    sp = deep_merge(SP, {"seeds": [0, 1]})
    hy = deep_merge(HYBRID, {"seeds": [0, 1]})
    runs = plan.expand_runs(config_with(runs={"sp": sp, "hy": hy}))
    assert plan.initial_state(runs, "hy-100pct-s1") == ("sp-100pct-s1", 4)
    assert plan.snapshot_epochs(runs, "sp-100pct-s0") == [4]
    with pytest.raises(UserInputError, match=r"runs\.hy\.pretrain\.hybrid_from.*seed 2"):
        plan.expand_runs(config_with(runs={"sp": sp, "hy": deep_merge(HYBRID, {"seeds": [2]})}))


def test_a_teacher_named_by_its_seed_group_pairs_seeds_with_a_seeded_student():
    teacher = {"fractions": [1.0], "seeds": [0, 1], "model": {"arch": "resnet50"}}
    config = config_with(runs={"t": teacher},
                         distillations={"s": {"teacher": "t-100pct", "seeds": [0, 1], "model": {"arch": "resnet18"}}})
    runs = plan.expand_runs(config)
    assert runs["s-s1"].teacher is runs["t-100pct-s1"] and runs["s-s0"].teacher is runs["t-100pct-s0"]
    assert runs["s-s1"].info()["seed_group"] == "s"
    # a seeded student reads its own config entry, named without the seed
    assert "distillations.s" in plan.stage_config_keys(config, "pretrain", runs["s-s1"])
    assert plan.stage_settings(config, "pretrain", runs["s-s1"])["distillations.s"]["seeds"] == [0, 1]
    # an unseeded student must name one seed's run; a full name always resolves
    unseeded = config_with(runs={"t": teacher}, distillations={"s": {"teacher": "t-100pct", "model": {"arch": "resnet18"}}})
    with pytest.raises(UserInputError, match=r"distillations\.s\.teacher.*t-100pct-s0"):
        plan.expand_runs(unseeded)
    named = config_with(runs={"t": teacher}, distillations={"s": {"teacher": "t-100pct-s1", "model": {"arch": "resnet18"}}})
    assert plan.expand_runs(named)["s"].teacher.name == "t-100pct-s1"


def test_random_init_seeds_give_one_floor_per_model_and_seed():
    config = config_with(runs={"a": {"fractions": [1.0]}}, random_init_seeds=[0, 2])
    runs = plan.expand_runs(config)
    floors = {name: run for name, run in runs.items() if run.is_baseline}
    assert set(floors) == {"random-init-resnet18-s0", "random-init-resnet18-s2"}
    assert floors["random-init-resnet18-s2"].pretrain == {"seed": 2}
    assert "pretrain.seed" not in plan.stage_config_keys(config, "pretrain", floors["random-init-resnet18-s2"])
    default = plan.expand_runs(config_with(runs={"a": {"fractions": [1.0]}}))
    assert "random-init-resnet18" in default  # the default keeps today's single floor
    assert "pretrain.seed" in plan.stage_config_keys(config, "pretrain", default["random-init-resnet18"])


def test_the_raw_pixel_floor_follows_the_random_init_floor_unless_set():
    on = plan.expand_runs(config_with(runs={"a": {"fractions": [1.0]}}))
    assert on[plan.RAW_PIXELS].is_raw_pixels and on[plan.RAW_PIXELS].info()["arch"] == plan.RAW_PIXELS
    assert plan.RAW_PIXELS not in plan.backbone_runs(on)
    assert plan.RAW_PIXELS not in plan.expand_runs(config_with(runs={"a": {"fractions": [1.0]}}, random_init_baseline=False))
    assert plan.RAW_PIXELS not in plan.expand_runs(config_with(runs={"a": {"fractions": [1.0]}}, raw_pixels={"enabled": False}))
    alone = plan.expand_runs(config_with(runs={"a": {"fractions": [1.0]}}, random_init_baseline=False,
                                         raw_pixels={"enabled": True}))
    assert plan.RAW_PIXELS in alone and not any(r.is_baseline for r in alone.values())
