# Self-supervised pretraining of every run, and the untrained random-init baselines.
# The run's resolved settings travel as JSON on the command line: a change of any key the run
# uses changes its command (and so reruns it, and only it).


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        train_log=OUT / "runs" / "{run}" / "train_log.csv",
        info=OUT / "runs" / "{run}" / "run.json",
        settings=OUT / "runs" / "{run}" / "config.yaml",
    params:
        settings=lambda w: json.dumps(plan.pretrain_settings(config, RUNS[w.run]), sort_keys=True),
        subset=pretrain_subset_arg,
        run_dir=lambda w: plan.run_dir(config, w.run),
    log:
        LOGS / "pretrain" / "{run}.log",
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    shell:
        "siamcollapse --threads {threads} pretrain --settings {params.settings:q}"
        " --data-root {input.data} {params.subset} --out-dir {params.run_dir} > {log} 2>&1"
