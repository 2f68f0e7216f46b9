# Self-supervised pretraining and distillation of every run, and the untrained random-init
# baselines. The stage reads the run's settings from the config by its name; the params record
# exactly the keys it reads, so editing one run group's settings reruns that group's runs only.
# A single-pass run that hybrid runs branch off is trained in segments: each segment ends in a
# training-state snapshot, which the next segment and the hybrid runs continue from.

PRETRAIN_PARAMS = {
    "config": CONFIG_ARGS,
    "settings": settings_of("pretrain"),
    "inputs": pretrain_input_args,
    "run_dir": lambda w: plan.run_dir(config, w.run),
}
PRETRAIN_COMMAND = (
    "siamcollapse pretrain {params.config} --run {wildcards.run} --data-root {input.data} {params.inputs}"
    " --out-dir {params.run_dir} --log {log}"
)


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        train_log=OUT / "runs" / "{run}" / "train_log.csv",
        info=OUT / "runs" / "{run}" / "run.json",
        settings=OUT / "runs" / "{run}" / "config.yaml",
    params:
        **PRETRAIN_PARAMS,
    log:
        LOGS / "pretrain" / "{run}.log",
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    shell:
        PRETRAIN_COMMAND


rule pretrain_segment:
    input:
        unpack(pretrain_inputs),
    output:
        state=OUT / "runs" / "{run}" / "state-epoch{epoch}.pt",
    params:
        **PRETRAIN_PARAMS,
    log:
        LOGS / "pretrain" / "{run}-epoch{epoch}.log",
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    shell:
        PRETRAIN_COMMAND + " --stop-after-epoch {wildcards.epoch} --state-out {output.state}"
