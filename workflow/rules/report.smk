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
        # what each job cost, from the benchmark files (not inputs: measurements never rerun it)
        costs=report(TREE.tables / COST_TABLE_FILES[0], caption="../report/costs_table.rst", category="Costs"),
        cost_summary=TREE.tables / COST_TABLE_FILES[1],
    log:
        LOGS / "collect_tables.log",
    benchmark:
        TREE.benchmark("collect_tables")
    threads: 1
    resources:
        **resources_of("default"),
    params:
        run_dirs=[d.path for d in RUN_DIRS],
        settings=settings_of("collect_tables"),
        compare=lambda w: "--compare-to-paper" if config["report"]["compare_to_paper"] else "",
        health=json.dumps(config["report"]["health"], sort_keys=True),
        out_dir=TREE.tables,
        benchmarks=TREE.benchmarks,
    shell:
        "siamcollapse collect-tables --run-dirs {params.run_dirs} --out-dir {params.out_dir} {params.compare}"
        " --health {params.health:q} --benchmarks {params.benchmarks} --log {log}"


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
        # a page per run group: its pretraining curves
        [
            report(
                run_group_figure(TREE.figures, group),
                caption="../report/run_group.rst",
                category="Pretraining curves",
                subcategory=group,
            )
            for group in TRAINED_GROUPS
        ],
    log:
        LOGS / "plot_figures.log",
    benchmark:
        TREE.benchmark("plot_figures")
    threads: 1
    resources:
        **resources_of("default"),
    params:
        run_dirs=[d.path for d in RUN_DIRS],
        out_dir=TREE.figures,
        run_groups=TRAINED_GROUPS,
    shell:
        "siamcollapse plot-figures --table {input.table} --run-dirs {params.run_dirs} --out-dir {params.out_dir}"
        " --run-groups {params.run_groups} --log {log}"
