"""What is checked before any job: sizes and process counts the config implies, YAML mistakes
(syntax, a key given twice, an empty file), overrides that merge, an output folder another
config trained into; each error names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from siamcollapse import cli, plan, preflight
from siamcollapse.config import SCHEMA_PATH, deep_merge, load_experiment, validate_config
from siamcollapse.errors import UserInputError
from siamcollapse.io import write_json

ROOT = Path(__file__).resolve().parents[2]
TINY = {"embedded": {"num_classes": 10, "train_per_class": 12}, "runs": {"g": {"fractions": [1.0]}},
        "pretrain": {"epochs": 2, "batch_size": 16}, "knn": {"k": [5, 20]}}


def checked(**sections):
    return preflight.check_experiment(validate_config(deep_merge(TINY, sections), SCHEMA_PATH))


def test_a_config_that_fits_passes_and_lists_its_runs():
    assert "g-100pct" in checked()


@pytest.mark.parametrize("sections,key,words", [
    ({"resources": {"pretrain": {"gpu": 3}}}, "runs.g.pretrain.batch_size", "3 processes"),
    ({"resources": {"pretrain": {"gpu": 2, "nodes": 2}}, "pretrain": {"batch_size": 18}},
     "runs.g.pretrain.batch_size", "multiple of 4"),
    ({"model": {"arch": "vit_small", "patch_size": 5}, "dataset": {"image_size": 16}}, "model.patch_size",
     "dataset.image_size"),
    ({"knn": {"k": [5, 5000]}}, "knn.k", "120 images"),
    ({"pretrain": {"batch_size": 4096}}, "runs.g.pretrain.batch_size", "120 images"),
    ({"runs": {"g": {"fractions": [0.1]}}, "pretrain": {"batch_size": 16}}, "runs.g.pretrain.batch_size", "12 images"),
    ({"runs": {"g": {"fractions": [1.0], "pretrain": {"strategy": "single-pass", "epochs": 10}}}},
     "runs.g.pretrain.batch_size", "strategy single-pass"),
])
def test_what_the_config_implies_is_checked_before_any_job(sections, key, words):
    with pytest.raises(UserInputError, match=f"key '{key}'") as error:
        checked(**sections)
    assert words in str(error.value)


def test_a_students_batch_is_checked_against_the_distill_jobs_processes():
    sections = {"distillations": {"s": {"teacher": "g-100pct", "model": {"arch": "resnet18"}}}, "resources": {"distill": {"gpu": 3}}}
    with pytest.raises(UserInputError, match="key 'distillations.s.pretrain.batch_size'.*resources.distill"):
        checked(**sections)


def test_an_image_folder_is_sized_by_its_stages_not_before(tmp_path):
    """Listing ImageNet on every Snakemake start would cost more than it finds: the stages check."""
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "a" / "0.png").write_bytes(b"")
    assert preflight.training_set_size(validate_config(
        {"dataset": {"source": "imagefolder", "root": str(tmp_path)}}, SCHEMA_PATH)) is None
    checked(dataset={"source": "imagefolder", "root": str(tmp_path)}, pretrain={"batch_size": 4096})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_key_given_twice_is_an_error_naming_the_file_and_line(tmp_path):
    config = write(tmp_path / "c.yaml", "runs:\n  g: {fractions: [1.0]}\n  g: {fractions: [0.5]}\n")
    with pytest.raises(UserInputError, match=r"c\.yaml is not valid YAML: .*'g' is given twice.*line 3"):
        load_experiment([config])


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    config = write(tmp_path / "c.yaml", "pretrain:\n  epochs: 2\n    batch_size: 4\n")
    with pytest.raises(UserInputError, match=r"c\.yaml is not valid YAML: .*line 3"):
        load_experiment([config])


def test_an_empty_config_file_is_an_error_not_the_defaults(tmp_path):
    config = write(tmp_path / "c.yaml", "# nothing yet\n")
    with pytest.raises(UserInputError, match=r"c\.yaml is empty"):
        load_experiment([config])


def test_validate_prints_one_error_line_naming_the_key(tmp_path, capsys):
    config = write(tmp_path / "c.yaml", (ROOT / "configs" / "test.yaml").read_text() + "knn: {k: [5, 5000]}\n")
    assert cli.main(["validate", "--configfile", str(ROOT / "configs" / "test.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
    assert cli.main(["validate", "--configfile", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "knn" in err[0] and "given twice" in err[0]


def test_a_nested_override_of_a_methods_augmentation_changes_only_the_keys_it_names(tmp_path):
    config = write(tmp_path / "c.yaml", "runs: {g: {fractions: [1.0]}}\n")
    defaults = load_experiment([config])["methods"]["mocov3"]["augment"]
    merged = load_experiment([config], {"methods": {"mocov3": {"augment": {"grayscale_p": 1.0}}}})
    assert merged["methods"]["mocov3"]["augment"] == {**defaults, "grayscale_p": 1.0}
    assert defaults["crop_min_scale"] == 0.08


def trained_by(config: dict, config_files: list[str]) -> None:
    """What the pretrain stage leaves in each run's folder: its settings and who trained it."""
    for run in plan.expand_runs(config).values():
        files = plan.run_dir(config, run.name)
        files.path.mkdir(parents=True, exist_ok=True)
        files.settings.write_text(yaml.safe_dump(plan.pretrain_settings(config, run)))
        write_json(files.written_by, {"config_files": config_files})


def test_a_second_config_with_other_settings_may_not_retrain_a_run_in_the_same_folder(tmp_path):
    first = validate_config(deep_merge(TINY, {"output_dir": str(tmp_path / "results")}), SCHEMA_PATH)
    trained_by(first, ["config.yaml"])
    other = validate_config(deep_merge(first, {"pretrain": {"epochs": 3}}), SCHEMA_PATH)
    with pytest.raises(UserInputError, match=r"key 'output_dir': .*g-100pct.* as config\.yaml trained it"):
        preflight.check_experiment(other, ["configs/other.yaml"])
    preflight.check_experiment(other, ["config.yaml"])  # the same file, edited: a rerun
    preflight.check_experiment(first, ["configs/other.yaml"])  # the same settings: nothing would change
