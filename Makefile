# Two entry points: `make run` (set-up + the default workflow + report) and `make test`.
# Both create .venv when it is missing and install the project with the pinned constraints.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-fast install dvc-repro clean

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "Results: results/tables/runs.md, results/figures/, results/report.html"

# The same DAG through DVC (dvc.yaml is generated from the Snakefile; see docs/dvc.md). Its stage
# commands (`siamcollapse ...`) are found on PATH, as in an activated environment.
dvc-repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# One pytest worker per core (pytest-xdist), each running whole files, in collection order: the
# long_chain files (the shared local run, the SLURM cluster) first (docs/testing.md).
PARALLEL := -n auto --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL)

# Unit and stage-integration tests only: no workflow engine (Snakemake, DVC, SLURM).
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not workflow"

install: $(STAMP)

# One install step for both targets: the project, its test extras, every version pinned. (pip
# byte-compiles everything it installs: where PYTHONDONTWRITEBYTECODE is set, Python
# would otherwise compile every imported module again in every process.)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf results data/embedded .snakemake
