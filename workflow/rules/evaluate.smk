# Evaluation of every backbone: features + spectrum (collapse AUC), linear probe, kNN.


rule extract_features:
    input:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        data=DATA_ROOT,
    output:
        features=multiext(f"{OUT}/runs/{{run}}/features/", "train.npy", "train_labels.npy",
                          "val.npy", "val_labels.npy", "meta.json"),
        spectrum=OUT / "runs" / "{run}" / "spectrum.csv",
        summary=OUT / "runs" / "{run}" / "spectrum.json",
    params:
        data=config["dataset"],
        features_dir=lambda w: plan.run_dir(config, w.run) / "features",
        evaluation=config["evaluation"],
        in_memory=lambda w: "--in-memory" if config["dataset"]["in_memory"] else "--no-in-memory",
    log:
        LOGS / "extract" / "{run}.log",
    threads: threads_of("extract")
    resources:
        **resources_of("extract"),
    shell:
        "siamcollapse --threads {threads} extract --checkpoint {input.checkpoint}"
        " --source {params.data[source]} --data-root {input.data} --image-size {params.data[image_size]}"
        " {params.in_memory} --batch-size {params.evaluation[batch_size]}"
        " --num-workers {params.evaluation[num_workers]} --features-dir {params.features_dir}"
        " --spectrum {output.spectrum} --summary {output.summary} > {log} 2>&1"


rule linear_probe:
    input:
        checkpoint=OUT / "runs" / "{run}" / "checkpoint.pt",
        features=rules.extract_features.output.features,
    output:
        OUT / "runs" / "{run}" / "linear_probe.json",
    params:
        probe=config["linear_probe"],
        features_dir=lambda w: plan.run_dir(config, w.run) / "features",
    log:
        LOGS / "linear_probe" / "{run}.log",
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse --threads {threads} linear-probe --checkpoint {input.checkpoint}"
        " --features-dir {params.features_dir} --lr {params.probe[lr]} --epochs {params.probe[epochs]}"
        " --batch-size {params.probe[batch_size]} --weight-decay {params.probe[weight_decay]}"
        " --seed {params.probe[seed]} --out {output} > {log} 2>&1"


rule knn:
    input:
        features=rules.extract_features.output.features,
    output:
        OUT / "runs" / "{run}" / "knn.json",
    params:
        k=" ".join(map(str, config["knn"]["k"])),
        temperature=config["knn"]["temperature"],
        features_dir=lambda w: plan.run_dir(config, w.run) / "features",
    log:
        LOGS / "knn" / "{run}.log",
    threads: threads_of("default")
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse --threads {threads} knn --features-dir {params.features_dir} --k {params.k}"
        " --temperature {params.temperature} --out {output} > {log} 2>&1"
