"""The jobs of a Snakemake dry-run (`snakemake -n -p`), parsed from what it prints: for the tests
that run or wrap each job's command themselves (inside a container image)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    command: str
    threads: int = 1  # the dry-run names a job's threads only when there are several


def planned_jobs(dry_run_output: str) -> list[PlannedJob]:
    """The jobs a `snakemake -n -p` run lists, with their input and output files and shell commands."""
    jobs, current = [], None
    for line in dry_run_output.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line):
            current = {"rule": match[1], "input": "", "output": "", "command": "None", "threads": "1"}
            jobs.append(current)
        elif current is not None and (match := re.fullmatch(r" {4}(input|output|threads): (.*)", line)):
            current[match[1]] = match[2]
        elif current is not None and line.startswith("Shell command: "):
            current["command"] = line.removeprefix("Shell command: ")
    return [PlannedJob(j["rule"], tuple(filter(None, j["input"].split(", "))),
                       tuple(filter(None, j["output"].split(", "))), j["command"], int(j["threads"])) for j in jobs]


def parents(jobs: list[PlannedJob]) -> dict[PlannedJob, set[PlannedJob]]:
    """Each job's direct parents: the jobs that write one of its inputs."""
    producer = {out: job for job in jobs for out in job.outputs}
    return {job: {producer[i] for i in job.inputs if i in producer} for job in jobs}
