"""DVC as a first-class way in: dvc.yaml is generated from the Snakemake workflow, runs the same
commands with the same outputs, reruns only invalidated stages, and shares a tree with Snakemake."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from siamcollapse import plan
from siamcollapse.codedeps import stage_code
from siamcollapse.config import load_experiment
from siamcollapse.dvc_yaml import CHECK_STAGE, TRAINING_CURVES, UNCAPPED_CORES
from siamcollapse.layout import CODE_STAMP_DIR, CODE_STAMP_SUFFIX, RunDir
from siamcollapse.plan import RANDOM_INIT

from .conftest import REPO, copy_project, edit_yaml, in_project, runs_of_test_config, stand_in_image_folder
from .test_snakemake import CONFIGS, check_every_stage_is_planned, job_counts

# Collected first (tests/conftest.py), beside test_shared_run.py: a run from an empty tree, pushed,
# pulled and rerun, then `dvc exp run`, makes this file the longest after that one.
pytestmark = pytest.mark.long_chain
TEST_PIPELINE = "workflow/dvc/test/dvc.yaml"
# DVC's refusal of a dvc.lock cut short (by a kill while DVC rewrote it): broken YAML, or a cut entry.
CUT_LOCK = re.compile(r"dvc\.lock' (is invalid|validation failed)")


def dataset_root_in_project(project: Path, config_name: str) -> None:
    """Configs that read a dataset from disk get a stand-in root inside the project."""
    config = yaml.safe_load((project / config_name).read_text())
    if config["dataset"]["source"] != "embedded":
        stand_in_image_folder(project / "dataset")
        edit_yaml(project / config_name, ("dataset.root", "dataset"))


def same_code(path: str | Path) -> str:
    """Code files by their place in the package: a project copy's dvc.yaml names src/ inside the copy,
    while Snakemake there names the installed package's files."""
    path = str(Path(path).resolve())
    return "src/siamcollapse/" + path.split("/src/siamcollapse/")[1] if "/src/siamcollapse/" in path else path


def code_files(path: Path) -> list[str]:
    """A Snakemake input as DVC lists it: a stage's code digest stands for the stage's files."""
    if path.name.endswith(CODE_STAMP_SUFFIX) and path.parent.match(f"*/{CODE_STAMP_DIR}"):
        return [same_code(file) for file in stage_code(path.name.removesuffix(CODE_STAMP_SUFFIX))]
    return [same_code(path)]


def snakemake_jobs(dry_run: str, project: Path) -> dict[str, tuple[frozenset, frozenset]]:
    """command -> (outputs, inputs) of every job, parsed from Snakemake's own dry-run printout."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run):
        command = re.search(r"^Shell command: (.+)$", block, re.MULTILINE)
        if command is None or command[1] == "None":  # rule all runs nothing
            continue
        fields = {k: frozenset(file for p in v.split(", ") for file in code_files(project / p))
                  for k, v in re.findall(r"^    (input|output): (.+)$", block, re.MULTILINE)}
        jobs[" ".join(command[1].split())] = (fields["output"], fields.get("input", frozenset()))
    return jobs


def dvc_stages(project: Path, pipeline: str) -> dict[str, tuple[frozenset, frozenset]]:
    """command -> (outs, deps) of every stage of ``pipeline``, as DVC itself reads the file."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        stages = [s for s in repo.index.stages if Path(s.dvcfile.path).resolve() == (project / pipeline).resolve()]
        return {
            " ".join(stage.cmd.split()): (
                frozenset(same_code(out.fs_path) for out in stage.outs),
                frozenset(same_code(dep.fs_path) for dep in stage.deps
                          if not isinstance(dep, ParamsDependency)),
            )
            for stage in stages if stage.name != CHECK_STAGE
        }


def test_committed_dvc_yaml_is_current():
    proc = in_project(REPO, "siamcollapse", "dvc-yaml", "--check", check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_committed_pipeline_draws_the_training_curves_of_every_trained_run():
    from siamcollapse.training.loop import LOG_COLUMNS

    assert {column for column, _, _ in TRAINING_CURVES.values()} <= set(LOG_COLUMNS)
    plots = {plot_id: spec for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
             if isinstance(entry, dict) for plot_id, spec in entry.items()}
    runs = plan.expand_runs(load_experiment([REPO / "config.yaml"]))
    trained = {name for name, run in runs.items() if not (run.is_baseline or run.is_raw_pixels)}
    for plot_id, (column, _, _) in TRAINING_CURVES.items():
        assert plots[plot_id]["x"] == "epoch", plot_id
        assert plots[plot_id]["y"] == {f"results/runs/{name}/train_log.csv": column for name in trained}, plot_id


@pytest.mark.parametrize("config_name", CONFIGS)
def test_dvc_runs_the_same_commands_with_the_same_outputs_and_inputs(config_name, project):
    """Snakemake plans every stage of the config, and DVC runs the same commands on the same files."""
    dataset_root_in_project(project, config_name)
    pipeline = "dvc.yaml"
    if config_name != "config.yaml":  # config.yaml's pipeline is the committed dvc.yaml, checked as it is
        pipeline = f"workflow/dvc/{Path(config_name).stem}/dvc.yaml"
        in_project(project, "siamcollapse", "dvc-yaml", "--configfile", config_name)
    dry_run = in_project(project, "snakemake", "-n", "-p", "--forceall", "--cores", str(UNCAPPED_CORES),
                         "--configfile", config_name).stdout
    check_every_stage_is_planned(job_counts(dry_run), [project / config_name])  # the same dry-run, for Snakemake
    snakemake, dvc = snakemake_jobs(dry_run, project), dvc_stages(project, pipeline)
    assert len(snakemake) >= 8
    assert set(dvc) == set(snakemake)
    for command, (outputs, inputs) in snakemake.items():
        assert dvc[command] == (outputs, inputs), command


def test_check_stage_fails_when_the_config_outgrows_dvc_yaml(project):
    in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml")
    assert in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml", "--check").returncode == 0
    edit_yaml(project / "configs/test.yaml", ("augment.flip_p", 0.0))  # a section spelled out for the first time
    stale = in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml", "--check", check=False)
    assert stale.returncode == 1 and "out of date" in stale.stderr and TEST_PIPELINE in stale.stderr
    # the command the error gives, as written, brings it up to date
    advice = re.search(r"regenerate it: (siamcollapse dvc-yaml .+)$", stale.stderr, re.MULTILINE)[1].split()
    in_project(project, *advice)
    assert in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml", "--check").returncode == 0


def test_a_stage_of_a_run_the_config_dropped_names_the_command_that_regenerates_its_pipeline(project):
    """Run by hand (or by a DVC without its check stage) after the config lost the run, the stage
    refuses it, and the command its error gives, as written, drops the run from the pipeline."""
    in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml")
    stage = "pretrain-simsiam-resnet18-50pct"
    command = yaml.safe_load((project / TEST_PIPELINE).read_text())["stages"][stage]["cmd"]
    config = yaml.safe_load((project / "configs/test.yaml").read_text())
    del config["runs"]["simsiam-resnet18"]
    (project / "configs/test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    refused = in_project(project, *shlex.split(command), check=False)
    assert refused.returncode != 0 and "'simsiam-resnet18-50pct' is not in this config" in refused.stderr
    advice = re.search(r"regenerate it with `([^`]+)`", refused.stderr)[1]
    in_project(project, *shlex.split(advice))
    stages = yaml.safe_load((project / TEST_PIPELINE).read_text())["stages"]
    assert stage not in stages and "pretrain-mocov3-resnet18-100pct" in stages


def ran_stages(repro_output: str) -> set[str]:
    return set(re.findall(r"Running stage '[^']*:([^']+)'", repro_output))


def restored_stages(repro_output: str) -> set[str]:
    """Stages DVC took from its run cache instead of running them."""
    return set(re.findall(r"Stage '[^']*:([^']+)' is cached - skipping run", repro_output))


def dvc_repro(project: Path) -> set[str]:
    return ran_stages(in_project(project, "dvc", "repro", TEST_PIPELINE).stdout)


def changed_stages(project: Path) -> set[str]:
    """Stages whose own dependencies or params changed, as `dvc status` reports them (what a
    repro then runs is these and everything downstream of them); DVC's own API, in this process."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return {name.rpartition(":")[2] for name in repo.status(targets=[str(project / TEST_PIPELINE)])}


def test_dvc_repro_runs_the_stages_of_a_target_from_an_empty_tree(project):
    """DVC itself runs the commands: from nothing to one floor's kNN (every stage on its way), and
    Snakemake then finds those outputs valid."""
    in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml")
    floor = next(run for run in runs_of_test_config() if run.startswith(RANDOM_INIT))
    target = f"{TEST_PIPELINE}:knn-{floor}"
    ran = ran_stages(in_project(project, "dvc", "repro", target).stdout)
    assert ran == {"prepare_data", f"random_init-{floor}", f"extract_features-{floor}", f"knn-{floor}"}
    knn = project / "results/test/runs" / floor / "knn.json"
    assert knn.is_file()
    assert "up to date" in in_project(project, "dvc", "status", target).stdout
    # Snakemake finds DVC's outputs valid: nothing to redo in the same tree.
    dry_run = in_project(project, "snakemake", "-n", knn.relative_to(project), "--configfile", "configs/test.yaml")
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr

    # DVC rewrites dvc.lock in place after each stage: killed in the middle of that, it leaves the
    # file cut short and refuses to run. The recovery docs/pipeline.md gives (delete it, rerun)
    # brings back every stage of the chain (from DVC's run cache, which holds these runs), with
    # the same results.
    result = knn.read_bytes()
    lock = (project / TEST_PIPELINE).with_name("dvc.lock")
    text = lock.read_text()
    lock.write_text(text[: len(text) // 2] + "  - path:\n")
    refused = in_project(project, "dvc", "repro", target, check=False)
    assert refused.returncode != 0 and CUT_LOCK.search(refused.stdout + refused.stderr), refused.stderr
    lock.unlink()
    recovered = in_project(project, "dvc", "repro", target).stdout
    assert ran_stages(recovered) | restored_stages(recovered) == ran
    assert knn.read_bytes() == result and "up to date" in in_project(project, "dvc", "status", target).stdout

    # docs/dvc.md's sharing: pushed to a remote, the artifacts come back with `dvc pull` into a
    # tree that has lost its cache and its outputs.
    in_project(project, "dvc", "remote", "add", "-d", "storage", project.parent / "remote")
    in_project(project, "dvc", "push", "--with-deps", target)
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / "results")
    shutil.rmtree(project / "data")
    in_project(project, "dvc", "pull", "--with-deps", target)
    assert knn.read_bytes() == result and RunDir(knn.parent).checkpoint.is_file()

    # docs/dvc.md's experiments: in a git repository, `dvc exp run -S` with one key changed reruns
    # the stage that reads it, and `dvc exp show` tables the experiment's params beside its results.
    dvc_config = project / ".dvc" / "config"
    dvc_config.write_text(dvc_config.read_text().replace("    no_scm = true\n", ""))
    for ignores in (".gitignore", ".dvc/.gitignore"):  # what a clone has: results and DVC's cache stay out of git
        shutil.copy2(REPO / ignores, project / ignores)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "project"]):
        subprocess.run(command, cwd=project, check=True, capture_output=True)
    experiment = in_project(project, "dvc", "exp", "run", "-n", "wider", "-S", "configs/test.yaml:knn.k=[10,20]", target)
    assert ran_stages(experiment.stdout) == {f"knn-{floor}"}
    shown = json.loads(in_project(project, "dvc", "exp", "show", "--json").stdout)
    head = next(row for row in shown if row["rev"] != "workspace")
    [wider] = [exp for branch in head["experiments"] for exp in branch["revs"] if exp["name"] == "wider"]
    relative = knn.relative_to(project).as_posix()
    for row, ks in ((wider, [10, 20]), (head, load_experiment([REPO / "configs" / "test.yaml"])["knn"]["k"])):
        assert row["data"]["params"]["configs/test.yaml"]["data"]["knn"]["k"] == ks
        assert row["data"]["metrics"][relative]["data"]["knn_k"] == ks[0]
    assert wider["data"]["metrics"][relative]["data"] == json.loads(knn.read_text())  # the workspace holds it


def test_repository_is_a_dvc_project_with_its_cache_ignored():
    assert (REPO / ".dvc" / "config").is_file() and (REPO / ".dvcignore").is_file()
    assert "/cache" in (REPO / ".dvc" / ".gitignore").read_text().split()


def test_copy_project_helper_copies_a_dvc_project(tmp_path):
    project = copy_project(tmp_path / "p")
    assert in_project(project, "dvc", "status", "dvc.yaml", check=False).returncode == 0
