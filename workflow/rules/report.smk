# Results: the run table and the paper-shaped tables (CSV + Markdown) and the figures, with
# captions for the HTML report.


rule collect_tables:
    input:
        info=run_files("run.json"),
        spectrum=run_files("spectrum.json"),
        linear=run_files("linear_probe.json"),
        knn=run_files("knn.json"),
        code=code_of("collect"),
    output:
        csv=report(OUT / "tables" / "runs.csv", caption="../report/runs_table.rst", category="Tables"),
        markdown=OUT / "tables" / "runs.md",
        paper_tables=[report(OUT / "tables" / name, caption=f"../report/{name.split('.')[0]}_table.rst", category="Tables")
                      if name.endswith(".csv") else OUT / "tables" / name for name in PAPER_TABLES],
    params:
        run_dirs=[plan.run_dir(config, run) for run in RUNS],
        settings=settings_of("collect_tables"),
        compare=lambda w: "--compare-to-paper" if config["report"]["compare_to_paper"] else "",
        out_dir=OUT / "tables",
    log:
        LOGS / "collect_tables.log",
    threads: 1
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse collect --run-dirs {params.run_dirs} --out-dir {params.out_dir} {params.compare} --log {log}"


rule plot_figures:
    input:
        table=OUT / "tables" / "runs.csv",
        spectra=run_files("spectrum.csv"),
        code=code_of("plot"),
    output:
        [report(OUT / "figures" / name, caption=f"../report/{name.removesuffix('.png')}.rst", category="Figures")
         for name in FIGURES],
    params:
        run_dirs=[plan.run_dir(config, run) for run in RUNS],
        out_dir=OUT / "figures",
    log:
        LOGS / "plot_figures.log",
    threads: 1
    resources:
        **resources_of("default"),
    shell:
        "siamcollapse plot --table {input.table} --run-dirs {params.run_dirs} --out-dir {params.out_dir} --log {log}"
