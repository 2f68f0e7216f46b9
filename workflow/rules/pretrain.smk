# Self-supervised pretraining of every run, the distillation of every student, and the
# initialisation of the untrained random-init baselines (one process, no GPU). The stage reads the run's settings from the config by its name; the
# params record exactly the keys it reads, so editing one run group's settings reruns that
# group's runs only. A single-pass run that hybrid runs branch off is trained in segments: each
# segment ends in a training-state snapshot, which the next segment and the hybrid runs continue.
#
# Scheduler resources come from the config: `resources.pretrain` for pretraining (and its
# segments), `resources.distill` for students. With GPUs the stage runs one process per GPU
# (`siamcollapse launch`, i.e. `accelerate launch`), with `nodes` > 1 one launcher per node
# through srun; `snakemake -n -p` shows the command.

PRETRAIN_PARAMS = {
    "config": config_param,
    "settings": settings_of("pretrain"),
    "inputs": pretrain_input_args,
    "run_dir": lambda w: plan.run_dir(config, w.run).path,
}
PRETRAIN_COMMAND = (
    "{params.launch} pretrain {params.config} --run {wildcards.run} --data-root {input.data} {params.inputs}"
    " --out-dir {params.run_dir} --threads {threads} --log {log}"
)
SEGMENT_COMMAND = " ".join([PRETRAIN_COMMAND, "--stop-after-epoch {wildcards.epoch} --state-out {output.state}"])
RUN_OUTPUTS = {"checkpoint": RUN.checkpoint, "train_log": RUN.train_log, "info": RUN.info, "settings": RUN.settings}


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        **RUN_OUTPUTS,
    log:
        LOGS / "pretrain" / "{run}.log",
    benchmark:
        TREE.benchmark("pretrain", "{run}")
    wildcard_constraints:
        run=runs_matching(lambda run: run.teacher is None and not run.is_floor),
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    params:
        **PRETRAIN_PARAMS,
        launch=launch_prefix_of("pretrain"),
    shell:
        PRETRAIN_COMMAND


rule pretrain_segment:
    input:
        unpack(pretrain_inputs),
    output:
        state=RUN.state("{epoch}"),
    log:
        LOGS / "pretrain" / f"{SEGMENT_JOB}.log",
    benchmark:
        TREE.benchmark("pretrain_segment", SEGMENT_JOB)
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    params:
        **PRETRAIN_PARAMS,
        launch=launch_prefix_of("pretrain"),
    shell:
        SEGMENT_COMMAND


rule distill:
    input:
        unpack(pretrain_inputs),
    output:
        **RUN_OUTPUTS,
    log:
        LOGS / "pretrain" / "{run}.log",
    benchmark:
        TREE.benchmark("distill", "{run}")
    wildcard_constraints:
        run=runs_matching(lambda run: run.teacher is not None),
    threads: threads_of("distill")
    resources:
        **resources_of("distill"),
    params:
        **PRETRAIN_PARAMS,
        launch=launch_prefix_of("distill"),
    shell:
        PRETRAIN_COMMAND


rule random_init:
    input:
        unpack(pretrain_inputs),
    output:
        **RUN_OUTPUTS,
    log:
        LOGS / "pretrain" / "{run}.log",
    benchmark:
        TREE.benchmark("random_init", "{run}")
    wildcard_constraints:
        run=runs_matching(lambda run: run.is_baseline),
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    params:
        **PRETRAIN_PARAMS,
        launch="siamcollapse",
    shell:
        PRETRAIN_COMMAND
