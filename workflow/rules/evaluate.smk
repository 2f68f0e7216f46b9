# Evaluation of every backbone: features + spectrum (collapse AUC), linear probe, kNN.
# Outputs named `metrics` (JSON) and `spectrum` (CSV) become DVC metrics and plots.


rule extract_features:
    input:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        data=DATA_ROOT,
        code=code_of("extract"),
    output:
        features=multiext(f"{OUT}/runs/{{run}}/features/", "train.npy", "train_labels.npy",
                          "val.npy", "val_labels.npy", "meta.json"),
        spectrum=OUT / "runs" / "{run}" / "spectrum.csv",
        metrics=OUT / "runs" / "{run}" / "spectrum.json",
    params:
        config=CONFIG_ARGS,
        settings=settings_of("extract_features"),
        features_dir=lambda w: plan.run_dir(config, w.run) / "features",
    log:
        LOGS / "extract" / "{run}.log",
    threads: threads_of("extract")
    resources:
        **resources_of("extract"),
    shell:
        "siamcollapse extract {params.config} --checkpoint {input.checkpoint} --data-root {input.data}"
        " --features-dir {params.features_dir} --spectrum {output.spectrum} --summary {output.metrics} --log {log}"


if config["linear_probe"]["mode"] == "cached":

    rule linear_probe:
        input:
            checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
            features=rules.extract_features.output.features,
            code=code_of("linear_probe"),
        output:
            metrics=OUT / "runs" / "{run}" / "linear_probe.json",
        params:
            config=CONFIG_ARGS,
            settings=settings_of("linear_probe"),
            features_dir=lambda w: plan.run_dir(config, w.run) / "features",
        log:
            LOGS / "linear_probe" / "{run}.log",
        threads: threads_of("default")
        resources:
            **resources_of("default"),
        shell:
            "siamcollapse linear-probe {params.config} --checkpoint {input.checkpoint}"
            " --features-dir {params.features_dir} --out {output.metrics} --log {log}"

else:  # the paper's probe: augmented images through the frozen backbone every step

    rule linear_probe:
        input:
            checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
            data=DATA_ROOT,
            code=code_of("augmented_probe"),
        output:
            metrics=OUT / "runs" / "{run}" / "linear_probe.json",
        params:
            config=CONFIG_ARGS,
            settings=settings_of("augmented_probe"),
        log:
            LOGS / "linear_probe" / "{run}.log",
        threads: threads_of("extract")
        resources:
            **resources_of("extract"),
        shell:
            "siamcollapse augmented-probe {params.config} --checkpoint {input.checkpoint} --data-root {input.data}"
            " --out {output.metrics} --log {log}"


rule knn:
    input:
        features=rules.extract_features.output.features,
        code=code_of("knn"),
    output:
        metrics=OUT / "runs" / "{run}" / "knn.json",
    params:
        config=CONFIG_ARGS,
        settings=settings_of("knn"),
        features_dir=lambda w: plan.run_dir(config, w.run) / "features",
    log:
        LOGS / "knn" / "{run}.log",
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse knn {params.config} --features-dir {params.features_dir} --out {output.metrics} --log {log}"
