"""`siamcollapse launch`: one stage on several processes (GPUs, nodes) through Accelerate.

    siamcollapse launch --processes-per-node 4 -- pretrain --config C ...
    srun --nodes 2 --ntasks-per-node 1 siamcollapse launch --nodes 2 --processes-per-node 4 -- pretrain ...

On one node this becomes ``accelerate launch --multi_gpu --num_processes 4 ... -m siamcollapse
pretrain ...``. Across the nodes of a SLURM allocation, srun starts one launcher per node; each
reads its node rank and the allocation's first host from SLURM, and all meet at a port derived
from the job id (unique per job, the same on every node). One process in all runs the stage
directly. The workflow writes these commands from the config's ``resources`` (``launch_prefix``),
so a dry-run shows them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import UserInputError

PORT_BASE, PORT_SPAN = 20000, 20000  # rendezvous ports 20000..39999, below Linux's ephemeral range


def launch_prefix(resources: Mapping[str, int]) -> str:
    """The command that starts a training stage with a family's scheduler ``resources``.

    ``siamcollapse`` for one process; ``siamcollapse launch ... --`` for one process per GPU,
    behind ``srun`` (one launcher per node) when the job spans nodes.
    """
    nodes, per_node = resources.get("nodes", 1), max(1, resources.get("gpu", 0))
    if nodes * per_node == 1:
        return "siamcollapse"
    launch = f"siamcollapse launch --nodes {nodes} --processes-per-node {per_node} --"
    if nodes == 1:
        return launch
    return f"srun --nodes {nodes} --ntasks-per-node 1 --kill-on-bad-exit=1 {launch}"


def slurm_first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[01-04]``), as SLURM itself expands it."""
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True,
                           text=True).stdout.split()
    return hosts[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendezvous(nodes: int, env: Mapping[str, str],
               first_host: Callable[[str], str] = slurm_first_host) -> tuple[int, str, int]:
    """(this node's rank, the rank-0 host, the port) of a launch over ``nodes`` nodes."""
    job = env.get("SLURM_JOB_ID")
    if nodes == 1:
        port = PORT_BASE + int(job) % PORT_SPAN if job else free_port()
        return 0, "127.0.0.1", port
    missing = [key for key in ("SLURM_JOB_ID", "SLURM_NODEID", "SLURM_JOB_NODELIST", "SLURM_NNODES")
               if key not in env]
    if missing:
        raise UserInputError(f"a launch over {nodes} nodes runs inside a SLURM allocation, started on every node by "
                             f"srun; {', '.join(missing)} not set")
    if int(env["SLURM_NNODES"]) != nodes:
        raise UserInputError(f"--nodes {nodes}, but the SLURM allocation has {env['SLURM_NNODES']} nodes")
    return int(env["SLURM_NODEID"]), first_host(env["SLURM_JOB_NODELIST"]), PORT_BASE + int(job) % PORT_SPAN


def accelerate_command(stage_argv: list[str], nodes: int, processes_per_node: int, env: Mapping[str, str],
                       gpu: bool, first_host: Callable[[str], str] = slurm_first_host) -> list[str]:
    """The command that runs ``siamcollapse <stage_argv>`` on this node's share of the processes."""
    if nodes * processes_per_node == 1:
        return [sys.executable, "-m", "siamcollapse", *stage_argv]
    rank, host, port = rendezvous(nodes, env, first_host)
    accelerate = Path(sys.executable).with_name("accelerate")
    return [
        str(accelerate) if accelerate.exists() else "accelerate", "launch", "--multi_gpu",
        "--num_machines", str(nodes), "--num_processes", str(nodes * processes_per_node),
        "--machine_rank", str(rank), "--main_process_ip", host, "--main_process_port", str(port),
        # the stage itself picks bf16 on GPUs; saying so here keeps accelerate from warning
        "--mixed_precision", "bf16" if gpu else "no", "--dynamo_backend", "no",
        "-m", "siamcollapse", *stage_argv,
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=1, help="nodes of the job (one launcher per node, by srun)")
    parser.add_argument("--processes-per-node", type=int, default=1, help="processes per node (one per GPU)")
    parser.add_argument("stage_argv", nargs=argparse.REMAINDER, metavar="-- STAGE ARGS",
                        help="the stage command line, e.g. `-- pretrain --config config.yaml --run NAME ...`")


def main(args: argparse.Namespace) -> int:
    stage_argv = args.stage_argv[1:] if args.stage_argv[:1] == ["--"] else args.stage_argv
    if not stage_argv:
        print("siamcollapse launch: error: give the stage command after `--`", file=sys.stderr)
        return 2
    if args.nodes < 1 or args.processes_per_node < 1:
        print("siamcollapse launch: error: --nodes and --processes-per-node must be at least 1", file=sys.stderr)
        return 2
    import torch

    try:
        command = accelerate_command(stage_argv, args.nodes, args.processes_per_node, os.environ,
                                     torch.cuda.is_available())
    except UserInputError as exc:
        print(f"siamcollapse launch: error: {exc}", file=sys.stderr)
        return 2
    print(f"siamcollapse launch: {shlex.join(command)}", flush=True)
    os.execvp(command[0], command)
