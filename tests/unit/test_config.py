"""Config validation: defaults, unknown keys, wrong types, impossible values, run expansion."""

from pathlib import Path

import pytest
import yaml

from siamcollapse import plan
from siamcollapse.config import nest_dotted_keys, schema_defaults, validate_config
from siamcollapse.errors import UserInputError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


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
    assert run.model == {"arch": "resnet18", "width": 16, "stem": "small"}


def test_runs_expand_per_fraction_with_one_baseline_per_model():
    config = validate_config({"runs": {"a": {"fractions": [0.1, 1.0]},
                                       "b": {"fractions": [0.5], "model": {"width": 16}}}}, SCHEMA)
    runs = plan.expand_runs(config)
    assert list(runs) == ["a-10pct", "a-100pct", "b-50pct", "random-init-resnet18", "random-init-resnet18-w16-imagenet"]
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
    config = validate_config({"pretrain": {"epochs": "2", "base_lr": "0.1", "fix_pred_lr": "false"},
                              "runs": {"r": {"fractions": "[0.5, 1.0]", "pretrain": {"batch_size": "32"}},
                                       "s": {"fractions": ["0.25", "1.0"]}},
                              "dataset": {"root": "123"}}, SCHEMA)
    assert config["pretrain"]["epochs"] == 2 and config["pretrain"]["base_lr"] == 0.1
    assert config["pretrain"]["fix_pred_lr"] is False
    assert config["runs"]["r"]["fractions"] == [0.5, 1.0] and config["runs"]["r"]["pretrain"]["batch_size"] == 32
    assert config["runs"]["s"]["fractions"] == [0.25, 1.0]
    assert config["dataset"]["root"] == "123"  # a string where the schema wants one
    with pytest.raises(UserInputError, match="pretrain.epochs"):
        validate_config({"pretrain": {"epochs": "two"}}, SCHEMA)
