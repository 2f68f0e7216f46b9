"""How a training stage is started on several processes and nodes (siamcollapse.launch)."""

from __future__ import annotations

import sys

import pytest

from siamcollapse import cli
from siamcollapse.errors import UserInputError
from siamcollapse.launch import PORT_BASE, PORT_SPAN, accelerate_command, launch_prefix, rendezvous
from siamcollapse.preflight import check_resources

SLURM_NODE = {"SLURM_JOB_ID": "4242", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_NNODES": "2"}


def first_of(nodelist: str) -> str:
    """The first host of a bracketed node list (what `scontrol show hostnames` prints first)."""
    prefix, ranges = nodelist.rstrip("]").split("[")
    return prefix + ranges.split("-")[0]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("resources", [{"gpu": 0}, {"gpu": 1}, {"gpu": 1, "nodes": 1}])
def test_one_process_runs_the_stage_itself(resources):
    assert launch_prefix(resources) == "siamcollapse"


def test_one_process_per_gpu_on_one_node():
    assert launch_prefix({"gpu": 4, "nodes": 1}) == "siamcollapse launch --nodes 1 --processes-per-node 4 --"


def test_several_nodes_start_one_launcher_per_node_through_srun():
    prefix = launch_prefix({"gpu": 8, "nodes": 2})
    assert prefix.startswith("srun --nodes 2 --ntasks-per-node 1 ")
    assert prefix.endswith(" siamcollapse launch --nodes 2 --processes-per-node 8 --")


@pytest.mark.parametrize(("resources", "key"), [
    ({"extract": {"nodes": 2, "gpu": 1}}, "resources.extract.nodes"),
    ({"pretrain": {"nodes": 2, "gpu": 0}}, "resources.pretrain.gpu"),
])
def test_impossible_multi_node_resources_are_named(resources, key):
    with pytest.raises(UserInputError, match=key):
        check_resources(resources)


def test_multi_node_training_on_gpus_is_accepted():
    check_resources({"pretrain": {"nodes": 4, "gpu": 8}, "distill": {"nodes": 2, "gpu": 1}, "default": {"gpu": 0}})


def test_every_node_meets_at_the_first_host_on_a_port_of_the_job():
    ranks = [rendezvous(2, {**SLURM_NODE, "SLURM_NODEID": str(node)}, first_of) for node in (0, 1)]
    assert [rank for rank, _, _ in ranks] == [0, 1]
    assert {(host, port) for _, host, port in ranks} == {("gpu07", PORT_BASE + 4242 % PORT_SPAN)}
    _, _, other_job = rendezvous(2, {**SLURM_NODE, "SLURM_JOB_ID": "4243"}, first_of)
    assert other_job != ranks[0][2]


def test_a_single_node_outside_slurm_takes_a_free_local_port():
    rank, host, port = rendezvous(1, {}, first_of)
    assert (rank, host) == (0, "127.0.0.1") and 0 < port < 65536


@pytest.mark.parametrize(("env", "message"), [
    ({}, "SLURM_JOB_ID, SLURM_NODEID, SLURM_JOB_NODELIST, SLURM_NNODES not set"),
    ({**SLURM_NODE, "SLURM_NNODES": "3"}, "allocation has 3 nodes"),
])
def test_a_multi_node_launch_outside_its_allocation_is_refused(env, message):
    with pytest.raises(UserInputError, match=message):
        rendezvous(2, env, first_of)


def test_the_accelerate_command_spans_every_process_of_every_node():
    argv = accelerate_command(["pretrain", "--run", "r"], 2, 4, SLURM_NODE, gpu=True, first_host=first_of)
    assert argv[1:3] == ["launch", "--multi_gpu"]
    assert (option(argv, "--num_machines"), option(argv, "--num_processes")) == ("2", "8")
    assert (option(argv, "--machine_rank"), option(argv, "--main_process_ip")) == ("1", "gpu07")
    assert option(argv, "--mixed_precision") == "bf16"
    assert argv[-5:] == ["-m", "siamcollapse", "pretrain", "--run", "r"]


def test_one_process_in_all_is_the_plain_stage_command():
    assert accelerate_command(["knn", "--x"], 1, 1, {}, gpu=False) == [sys.executable, "-m", "siamcollapse", "knn", "--x"]


def test_launch_without_a_stage_is_an_error(capsys):
    assert cli.main(["launch", "--processes-per-node", "2"]) == 2
    assert "give the stage command after `--`" in capsys.readouterr().err
