# make demo: install into .venv/, then run every version on a small synthetic production.
# make test: install into .venv/ if needed, then run the test suite.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edtrain-installed
PYTHON ?= python3
# The rules call the `edtrain` command: put the environment's bin/ first, as activating it would.
export PATH := $(abspath $(BIN)):$(PATH)
# Snakemake imports every installed executor plugin at start-up, and HTCondor's bindings warn on
# import wherever no HTCondor is configured (a laptop, CI): not a concern of a local run.
export PYTHONWARNINGS := ignore:The environment variable CONDOR_CONFIG is unset:UserWarning

.PHONY: demo test lint dryrun clean-demo

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml

test: $(STAMP)
	$(BIN)/pytest

# The checks CI gates on besides the tests.
lint: $(STAMP)
	$(BIN)/ruff check workflow tests
	$(BIN)/ruff format --check workflow tests
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

# What the cluster profiles would submit, without a scheduler.
dryrun: $(STAMP)
	$(BIN)/snakemake -n --profile profiles/condor
	$(BIN)/snakemake -n --profile profiles/slurm

clean-demo:
	rm -rf results/demo logs/demo .state/demo

$(STAMP): pyproject.toml workflow/edtrain/dataset/_float16.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[cpu,dev,root]'
	touch $@
