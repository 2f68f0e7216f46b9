# Evaluation of every backbone: features + spectrum (collapse AUC), linear probe, kNN.
# The raw-pixel floor (run `raw-pixels`) has pixels for features and no checkpoint: its own
# extract rule, then the same cached linear probe (whatever linear_probe.mode) and kNN.
# Outputs named `metrics` (JSON) and `spectrum` (CSV) become DVC metrics and plots.


rule extract_features:
    input:
        checkpoint=RUN.checkpoint,
        settings=RUN.settings,
        data=DATA_ROOT,
        code=code_of("extract_features"),
    output:
        features=RUN.features.files(),
        spectrum=RUN.spectrum,
        metrics=RUN.spectrum_summary,
    log:
        LOGS / "extract" / "{run}.log",
    benchmark:
        TREE.benchmark("extract_features", "{run}")
    wildcard_constraints:
        run=runs_matching(lambda run: not run.is_raw_pixels),
    threads: threads_of("extract")
    resources:
        **resources_of("extract"),
    params:
        config=config_param,
        settings=settings_of("extract_features"),
        features_dir=lambda w: plan.run_dir(config, w.run).features.path,
    shell:
        "siamcollapse extract-features {params.config} --checkpoint {input.checkpoint} --run-settings {input.settings}"
        " --data-root {input.data}"
        " --features-dir {params.features_dir} --spectrum {output.spectrum} --summary {output.metrics} --log {log}"


rule extract_raw_pixels:
    input:
        data=DATA_ROOT,
        code=code_of("extract_raw_pixels"),
    output:
        features=RUN.features.files(),
        spectrum=RUN.spectrum,
        metrics=RUN.spectrum_summary,
        info=RUN.info,
        settings=RUN.settings,
    log:
        LOGS / "extract" / "{run}.log",
    benchmark:
        TREE.benchmark("extract_raw_pixels", "{run}")
    wildcard_constraints:
        run=runs_matching(lambda run: run.is_raw_pixels),
    threads: threads_of("extract")
    resources:
        **resources_of("extract", gpus=False),
    params:
        config=config_param,
        settings=settings_of("extract_raw_pixels"),
        features_dir=lambda w: plan.run_dir(config, w.run).features.path,
    shell:
        "siamcollapse extract-raw-pixels {params.config} --data-root {input.data} --features-dir {params.features_dir}"
        " --spectrum {output.spectrum} --summary {output.metrics} --info {output.info}"
        " --settings {output.settings} --log {log}"


rule linear_probe:
    input:
        unpack(probe_inputs),
    output:
        metrics=RUN.linear_probe,
    log:
        LOGS / "linear_probe" / "{run}.log",
    benchmark:
        TREE.benchmark("linear_probe", "{run}")
    wildcard_constraints:  # with the augmented probe, only the raw-pixel floor takes the cached one
        run=runs_matching(lambda run: run.is_raw_pixels or not AUGMENTED_PROBE),
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    params:
        config=config_param,
        settings=settings_of("linear_probe"),
        features_dir=lambda w: plan.run_dir(config, w.run).features.path,
        checkpoint=lambda w, input: f"--checkpoint {input.checkpoint}" if "checkpoint" in input.keys() else "",
    shell:
        "siamcollapse linear-probe {params.config} {params.checkpoint}"
        " --features-dir {params.features_dir} --out {output.metrics} --log {log}"


if AUGMENTED_PROBE:  # the paper's probe: augmented images through the frozen backbone every step

    rule augmented_probe:
        input:
            checkpoint=RUN.checkpoint,
            data=DATA_ROOT,
            code=code_of("augmented_probe"),
        output:
            metrics=RUN.linear_probe,
        log:
            LOGS / "linear_probe" / "{run}.log",
        benchmark:
            TREE.benchmark("augmented_probe", "{run}")
        wildcard_constraints:
            run=runs_matching(lambda run: not run.is_raw_pixels),
        threads: threads_of("extract")
        resources:
            **resources_of("extract"),
        params:
            config=config_param,
            settings=settings_of("augmented_probe"),
        shell:
            "siamcollapse augmented-probe {params.config} --checkpoint {input.checkpoint} --data-root {input.data}"
            " --out {output.metrics} --log {log}"


rule knn:
    input:
        features=rules.extract_features.output.features,
        code=code_of("knn"),
    output:
        metrics=RUN.knn,
    log:
        LOGS / "knn" / "{run}.log",
    benchmark:
        TREE.benchmark("knn", "{run}")
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    params:
        config=config_param,
        settings=settings_of("knn"),
        features_dir=lambda w: plan.run_dir(config, w.run).features.path,
    shell:
        "siamcollapse knn {params.config} --features-dir {params.features_dir} --out {output.metrics} --log {log}"
