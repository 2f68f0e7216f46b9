# Self-supervised pretraining of every run, and the untrained random-init baselines.
# The stage reads the run's settings from the config by its name; the params record exactly
# the keys it reads, so editing one run group's settings reruns that group's runs only.


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        train_log=OUT / "runs" / "{run}" / "train_log.csv",
        info=OUT / "runs" / "{run}" / "run.json",
        settings=OUT / "runs" / "{run}" / "config.yaml",
    params:
        config=CONFIG_ARGS,
        settings=settings_of("pretrain"),
        subset=pretrain_subset_arg,
        run_dir=lambda w: plan.run_dir(config, w.run),
    log:
        LOGS / "pretrain" / "{run}.log",
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    shell:
        "siamcollapse pretrain {params.config} --run {wildcards.run} --data-root {input.data} {params.subset}"
        " --out-dir {params.run_dir} --log {log}"
