# Dataset preparation and nested subsets.

if config["dataset"]["source"] == "embedded":

    rule prepare_data:
        output:
            directory(DATA_ROOT),
        params:
            generator=config["embedded"],
        log:
            LOGS / "prepare_data.log",
        threads: threads_of("default")
        resources:
            **resources_of("default"),
        shell:
            "siamcollapse prepare-data --out {output} --seed {params.generator[seed]}"
            " --num-classes {params.generator[num_classes]}"
            " --train-per-class {params.generator[train_per_class]}"
            " --val-per-class {params.generator[val_per_class]}"
            " --image-size {params.generator[image_size]} > {log} 2>&1"


rule make_subset:
    input:
        data=DATA_ROOT,
    output:
        OUT / "subsets" / "{fraction}.json",
    params:
        source=config["dataset"]["source"],
        fraction=lambda w: FRACTION_OF_TAG[w.fraction],
        seed=config["subsets"]["seed"],
        stratified="--stratified" if config["subsets"]["stratified"] else "--no-stratified",
    log:
        LOGS / "subsets" / "{fraction}.log",
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse make-subset --source {params.source} --data-root {input.data}"
        " --fraction {params.fraction} --seed {params.seed} {params.stratified} --out {output} > {log} 2>&1"
