# Results: the run table, the paper-shaped tables, the forecast of accuracy by the label-free
# metrics (CSV + Markdown), the long table of every spectrum's metrics and the figures, with
# captions for the HTML report. The figures of the metrics tracked during training read the train
# log of every run that has one (every run but the raw-pixel floor).

TRAIN_LOGS = [plan.run_dir(config, run).train_log for run in plan.backbone_runs(RUNS)]


rule collect_tables:
    input:
        info=[d.info for d in RUN_DIRS],
        train_logs=TRAIN_LOGS,  # the health column reads each run's last epoch
        spectrum=[d.spectrum_summary for d in RUN_DIRS],
        linear=[d.linear_probe for d in RUN_DIRS],
        knn=[d.knn for d in RUN_DIRS],
        code=code_of("collect_tables"),
    output:
        csv=report(TREE.run_table, caption="../report/runs_table.rst", category="Tables"),
        markdown=TREE.run_summary,
        # every table file but the run table's: the paper-shaped tables, the forecast, metrics.csv
        tables=[
            (
                report(TREE.tables / name, caption=f"../report/{name.split('.')[0]}_table.rst", category="Tables")
                if name.endswith(".csv")
                else TREE.tables / name
            )
            for name in PAPER_TABLES
        ],
    log:
        LOGS / "collect_tables.log",
    threads: 1
    resources:
        **resources_of("default"),
    params:
        run_dirs=[d.path for d in RUN_DIRS],
        settings=settings_of("collect_tables"),
        compare=lambda w: "--compare-to-paper" if config["report"]["compare_to_paper"] else "",
        health=json.dumps(config["report"]["health"], sort_keys=True),
        out_dir=TREE.tables,
    shell:
        "siamcollapse collect-tables --run-dirs {params.run_dirs} --out-dir {params.out_dir} {params.compare}"
        " --health {params.health:q} --log {log}"


rule plot_figures:
    input:
        table=TREE.run_table,
        spectra=[d.spectrum for d in RUN_DIRS],
        train_logs=TRAIN_LOGS,
        code=code_of("plot_figures"),
    output:
        [
            report(TREE.figures / name, caption=f"../report/{name.removesuffix('.png')}.rst", category="Figures")
            for name in FIGURE_NAMES
        ],
    log:
        LOGS / "plot_figures.log",
    threads: 1
    resources:
        **resources_of("default"),
    params:
        run_dirs=[d.path for d in RUN_DIRS],
        out_dir=TREE.figures,
    shell:
        "siamcollapse plot-figures --table {input.table} --run-dirs {params.run_dirs} --out-dir {params.out_dir} --log {log}"
