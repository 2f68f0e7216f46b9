# Dataset preparation and nested subsets.

if config["dataset"]["source"] == "embedded":

    rule prepare_data:
        input:
            code=code_of("prepare_data"),
        output:
            directory(DATA_ROOT),
        log:
            LOGS / "prepare_data.log",
        benchmark:
            TREE.benchmark("prepare_data")
        threads: threads_of("default")
        resources:
            **resources_of("default"),
        params:
            config=config_param,
            settings=settings_of("prepare_data"),
        shell:
            "siamcollapse prepare-data {params.config} --out {output} --log {log}"


rule make_subset:
    input:
        data=DATA_ROOT,
        code=code_of("make_subset"),
    output:
        TREE.subset("{fraction}"),
    log:
        LOGS / "subsets" / "{fraction}.log",
    benchmark:
        TREE.benchmark("make_subset", "{fraction}")
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    params:
        config=config_param,
        settings=settings_of("make_subset"),
        fraction=lambda w: FRACTION_OF_TAG[w.fraction],
    shell:
        "siamcollapse make-subset {params.config} --fraction {params.fraction} --data-root {input.data}"
        " --out {output} --log {log}"
