"""Config validation: defaults, unknown keys, wrong types, impossible values, run expansion."""

import math
from pathlib import Path

import pytest
import yaml

from siamcollapse import plan
from siamcollapse.config import (
    SCHEMA_PATH,
    get_dotted,
    has_dotted,
    load_experiment,
    nest_dotted_keys,
    schema_defaults,
    steps_per_epoch,
    validate_config,
)
from siamcollapse.errors import UserInputError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = SCHEMA_PATH


def load(name):
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("*.yaml"))])
def test_shipped_configs_are_valid(name):
    validate_config(load(name), SCHEMA, name)


def test_every_schema_property_has_a_description():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            if "$ref" not in sub:
                assert "description" in sub, f"{path}{key} has no description"
            walk(sub, f"{path}{key}.")

    walk(schema, "")
    for name, definition in schema["$defs"].items():
        walk(definition, f"$defs.{name}.")


def test_config_yaml_comments_every_top_level_key():
    text = (ROOT / "config.yaml").read_text().splitlines()
    for i, line in enumerate(text):
        if line and not line.startswith((" ", "#")):
            assert text[i - 1].startswith("#") or "#" in line, f"config.yaml key without a comment: {line}"


@pytest.mark.parametrize(
    "override,key",
    [
        ({"pretrain": {"epochs": 0}}, "pretrain.epochs"),
        ({"pretrain": {"epochs": "ten"}}, "pretrain.epochs"),
        ({"linear_probe": {"lr": -0.1}}, "linear_probe.lr"),
        ({"linear_probe": {"learning_rate": 0.1}}, "linear_probe.learning_rate"),
        ({"runs": {"a": {"fractions": [1.5]}}}, "runs.a.fractions.0"),
        ({"runs": {"a": {"fractions": [0.5], "model": {"arch": "vgg"}}}}, "runs.a.model.arch"),
        ({"dataset": {"source": "mnist"}}, "dataset.source"),
        ({"typo_key": 1}, "typo_key"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(UserInputError) as err:
        validate_config(override, SCHEMA, "config.yaml")
    assert f"'{key}'" in str(err.value)


def test_defaults_fill_missing_keys_but_run_overrides_stay_partial():
    config = validate_config({"model": {"width": 16}, "runs": {"r": {"fractions": [0.5], "model": {"stem": "small"}}}},
                             SCHEMA)
    assert config["linear_probe"]["lr"] == schema_defaults(SCHEMA)["linear_probe"]["lr"]
    assert config["runs"]["r"]["model"] == {"stem": "small"}
    run = plan.expand_runs(config)["r-50pct"]
    # the group's stem over the top-level width (other ResNet keys keep their defaults)
    assert {k: run.model[k] for k in ("arch", "block", "width", "stem")} == {
        "arch": "resnet18", "block": "default", "width": 16, "stem": "small"}


def test_runs_expand_per_fraction_with_one_baseline_per_model():
    config = validate_config({"runs": {"a": {"fractions": [0.1, 1.0]},
                                       "b": {"fractions": [0.5], "model": {"width": 16}}}}, SCHEMA)
    runs = plan.expand_runs(config)
    assert list(runs) == ["a-10pct", "a-100pct", "b-50pct", "random-init-resnet18", "random-init-resnet18-w16",
                          plan.RAW_PIXELS]
    assert runs["a-10pct"].dataset_fraction == 0.1 and runs["random-init-resnet18"].is_baseline
    assert plan.fractions(config) == [0.1, 0.5, 1.0]


def test_dotted_overrides_nest():
    config = nest_dotted_keys({"dataset.root": "/x", "dataset": {"source": "imagefolder"}})
    assert config == {"dataset": {"root": "/x", "source": "imagefolder"}}


def test_missing_external_dataset_root_is_an_error(tmp_path):
    config = validate_config({"dataset": {"source": "imagefolder", "root": str(tmp_path / "nope")}}, SCHEMA)
    with pytest.raises(UserInputError, match="dataset.root"):
        plan.check_dataset_root(config)


def test_strings_from_the_snakemake_command_line_are_parsed_where_the_schema_wants_numbers():
    config = validate_config({"pretrain": {"epochs": "2"}, "methods": {"simsiam": {"base_lr": "0.1", "fix_pred_lr": "false"}},
                              "runs": {"r": {"fractions": "[0.5, 1.0]", "pretrain": {"batch_size": "32"}},
                                       "s": {"fractions": ["0.25", "1.0"]}},
                              "dataset": {"root": "123"}}, SCHEMA)
    assert config["pretrain"]["epochs"] == 2 and config["methods"]["simsiam"]["base_lr"] == 0.1
    assert config["methods"]["simsiam"]["fix_pred_lr"] is False
    assert config["runs"]["r"]["fractions"] == [0.5, 1.0] and config["runs"]["r"]["pretrain"]["batch_size"] == 32
    assert config["runs"]["s"]["fractions"] == [0.25, 1.0]
    assert config["dataset"]["root"] == "123"  # a string where the schema wants one
    with pytest.raises(UserInputError, match="pretrain.epochs"):
        validate_config({"pretrain": {"epochs": "two"}}, SCHEMA)


def test_exponents_yaml_reads_as_strings_are_numbers_where_the_schema_wants_one(tmp_path):
    path = tmp_path / "c.yaml"  # PyYAML (YAML 1.1) reads 1e-4 and 1.0e30 as strings
    path.write_text("methods:\n  simsiam: {weight_decay: 1e-4, base_lr: 1.0e30}\n")
    assert yaml.safe_load(path.read_text())["methods"]["simsiam"]["weight_decay"] == "1e-4"
    config = load_experiment([path])
    assert config["methods"]["simsiam"]["weight_decay"] == 1e-4 and config["methods"]["simsiam"]["base_lr"] == 1e30
    path.write_text("methods:\n  simsiam: {base_lr: nan}\n")  # never a NaN setting
    with pytest.raises(UserInputError, match="methods.simsiam.base_lr"):
        load_experiment([path])


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_load_experiment_merges_files_in_order_then_overrides(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", {"pretrain": {"epochs": 5, "batch_size": 64},
                                               "knn": {"k": [1, 2]}, "output_dir": "base-out"})
    local = write_yaml(tmp_path / "local.yaml", {"pretrain": {"epochs": 7}, "output_dir": "local-out"})
    config = load_experiment([base, local], {"pretrain": {"batch_size": 16}, "knn.temperature": 0.5})
    assert config["pretrain"]["epochs"] == 7  # the later file wins
    assert config["pretrain"]["batch_size"] == 16  # overrides win over every file
    assert config["output_dir"] == "local-out"
    assert config["knn"] == {"k": [1, 2], "temperature": 0.5}  # merged deeply, dotted override nested
    assert config["linear_probe"]["epochs"] == schema_defaults()["linear_probe"]["epochs"]  # defaults filled
    assert load_experiment([local, base])["pretrain"]["epochs"] == 5  # order matters


def test_load_experiment_leaves_its_overrides_untouched(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", {})
    overrides = {"knn.k": [3]}
    assert load_experiment([base], overrides)["knn"]["k"] == [3]
    assert overrides == {"knn.k": [3]}


@pytest.mark.parametrize(
    "files,overrides,key",
    [
        ([{"pretrain": {"epoch": 3}}], None, "pretrain.epoch"),
        ([{}], {"linear_probe": {"epochz": 1}}, "linear_probe.epochz"),
        ([{}, {"knn": {"k": [0]}}], None, "knn.k.0"),
        ([{}], {"evaluation.batch_size": "many"}, "evaluation.batch_size"),
    ],
)
def test_load_experiment_names_the_bad_key(tmp_path, files, overrides, key):
    paths = [write_yaml(tmp_path / f"{i}.yaml", data) for i, data in enumerate(files)]
    with pytest.raises(UserInputError) as err:
        load_experiment(paths, overrides)
    assert f"'{key}'" in str(err.value)


def test_load_experiment_names_a_missing_or_malformed_file(tmp_path):
    with pytest.raises(UserInputError, match="no config file"):
        load_experiment([])
    with pytest.raises(UserInputError, match="nope.yaml"):
        load_experiment([tmp_path / "nope.yaml"])
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(UserInputError, match="list.yaml"):
        load_experiment([tmp_path / "list.yaml"])


def test_get_dotted_and_has_dotted():
    config = {"a": {"b": {"c": 0}, "list": [1]}, "x": None}
    assert get_dotted(config, "a.b.c") == 0
    assert get_dotted(config, "a.b") == {"c": 0}
    assert get_dotted(config, "x") is None
    for missing in ["a.b.d", "a.list.0", "a.b.c.d", "nope", "x.y"]:
        with pytest.raises(KeyError):
            get_dotted(config, missing)
        assert not has_dotted(config, missing)
    assert has_dotted(config, "a.b.c") and has_dotted(config, "x")


def test_steps_per_epoch_is_fixed_by_the_full_training_set():
    assert steps_per_epoch({"steps_per_epoch": None, "batch_size": 64}, 4000) == math.ceil(4000 / 64)
    assert steps_per_epoch({"steps_per_epoch": 7, "batch_size": 64}, 4000) == 7
