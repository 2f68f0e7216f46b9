# Two entry points: `make run` (set-up + the default workflow + report) and `make test`.
# Both create .venv when it is missing and install the project with the pinned constraints.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-fast test-faults test-gpu test-container image local-base install dvc-repro clean

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "Results: results/tables/runs.md, results/figures/, results/report.html"

# The same DAG through DVC (dvc.yaml is generated from the Snakefile; see docs/dvc.md). Its stage
# commands (`siamcollapse ...`) are found on PATH, as in an activated environment.
dvc-repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# One pytest worker per core (pytest-xdist), each running whole files, in collection order: the
# long_chain files (the shared local run beside the SLURM run, then the reruns; DVC's runs) first
# (docs/testing.md).
PARALLEL := -n auto --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not faults and not gpu and not container"

# Fault injection (minutes): the engines SIGKILLed at random points, then recovered (CI runs it
# after make test).
test-faults: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m faults

# Unit and stage-integration tests only: no workflow engine (Snakemake, DVC, SLURM).
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not workflow and not gpu and not container"

# The GPU path (bf16, channels_last, torch.compile, no per-step host sync), on a machine with
# CUDA; it fails where there is none. One process: the tests share the one device.
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -m gpu

# The runtime image (containers/Dockerfile, docs/containers.md): with docker where a daemon
# answers, else with buildah (chroot isolation: no OCI runtime needed). IMAGE_ARGS are
# Dockerfile build args (NAME=VALUE ...); CA_BUNDLE, a CA file pip needs behind a TLS proxy.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE := siamcollapse/siamcollapse:$(VERSION)
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo buildah)
IMAGE_ARGS ?=
CA_BUNDLE ?=
BUILD_OPTIONS = -f containers/Dockerfile -t $(IMAGE) $(IMAGE_ARGS:%=--build-arg %) \
	$(if $(CA_BUNDLE),--secret id=ca-bundle$(COMMA)src=$(CA_BUNDLE))
COMMA := ,

image:
ifeq ($(ENGINE),docker)
	docker build $(BUILD_OPTIONS) .
else
	buildah bud --isolation chroot --network host --layers \
	  --ignorefile containers/Dockerfile.dockerignore $(BUILD_OPTIONS) .
endif

# The image built here on a local Debian 12 base (no registry is needed: mmdebstrap makes it from
# Debian's packages, cached in build/), then the stage commands of configs/test.yaml run inside
# it and give the host's results (tests/container/).
LOCAL_BASE := localhost/siamcollapse-base:bookworm
BASE_TAR := build/container/debian-bookworm.tar

$(BASE_TAR):
	mkdir -p $(@D)
	mmdebstrap --quiet --variant=minbase --format=tar --include=python3,python3-venv,ca-certificates bookworm $@.part
	mv $@.part $@

local-base: $(BASE_TAR)
	buildah inspect --type image $(LOCAL_BASE) >/dev/null 2>&1 || { \
	  c=$$(buildah from scratch) && buildah add --quiet $$c $(BASE_TAR) / \
	  && buildah commit --quiet --rm $$c $(LOCAL_BASE); }

test-container: $(STAMP) local-base
	$(MAKE) image ENGINE=buildah IMAGE_ARGS="BASE_IMAGE=$(LOCAL_BASE) PYTHON_STAGE=python-system" \
	  CA_BUNDLE=$(firstword $(wildcard $(PIP_CERT) /etc/ssl/certs/ca-certificates.crt))
	$(BIN)/python -m pytest -m container
	buildah rmi --prune >/dev/null  # the replaced image and the build's cached layers: 6 GB a build

install: $(STAMP)

# One install step for both targets: the project, its test extras, every version pinned. uv
# installs that set in under half pip's time (it unpacks torch's CUDA libraries in parallel); pip
# does it where uv cannot be had. uv reads no pip configuration, so it is handed pip's extra
# indexes and find-links (local mirrors, where a machine has them) and pip's rule of taking the
# best version from any index. Both byte-compile what they install: where
# PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile every imported module again in
# every process.
PIP_SETTING = $$($(BIN)/python -m pip config get global.$(1) 2>/dev/null)
UV_SETTINGS = UV_INDEX_STRATEGY=unsafe-best-match UV_EXTRA_INDEX_URL="$(call PIP_SETTING,extra-index-url)" \
	UV_FIND_LINKS="$$(echo $${PIP_FIND_LINKS:-$(call PIP_SETTING,find-links)} | tr ' ' ',')"
PIN_PROJECT := -c constraints.txt -e '.[test]'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet -c constraints.txt uv \
	  && $(UV_SETTINGS) $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(PIN_PROJECT); } \
	|| $(BIN)/python -m pip install --quiet $(PIN_PROJECT)
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf results data/embedded .snakemake
