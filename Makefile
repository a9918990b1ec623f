# Two commands set up everything on a fresh machine: `make demo` and `make test`.
# Every virtualenv is created on first use and reused after (stamp files track the pins).
SHELL := /bin/bash
PYTHON ?= python3
ENV ?= dev
# The environments, in promotion order, from their one owner (infra/contract.py, standard library only,
# so the system Python reads it before any virtualenv exists). Deferred (`=`): only targets that use it
# run Python, and an unreadable contract stops them instead of looping over nothing.
ENVS = $(or $(shell $(PYTHON) -c 'from infra.contract import ENVIRONMENTS; print(*ENVIRONMENTS)'),$(error cannot read the environments from infra/contract.py with $(PYTHON)))

VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
POLICY_VENV := .venv-policy
MUTATION_VENV := .venv-mutation

.PHONY: help setup tools reference demo test pytest lint typecheck plan plans validate generate mutation lock clean

help:
	@echo "make demo           the whole loop on this machine (embedded MLflow, plans, validate, serve)"
	@echo "make test           lint, type checks and the whole test suite"
	@echo "make plan ENV=dev   offline plan of one environment into build/plan/<env>.json"
	@echo "make validate       mlplat validate over every app in every environment"
	@echo "make generate       rewrite the files that list the environments (deploy and promote workflows,"
	@echo "                    infra/bootstrap/contract.tf.json) from infra/contract.py"
	@echo "make reference      download ../shared/reference (upstream CRDs, chart defaults) where missing"
	@echo "make lint           pre-commit's checks: ruff, yamllint, secrets scan, mypy"
	@echo "make mutation       mutation scores of the gate modules (slow: see README)"

$(BIN)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements.lock -e '.[dev,runtime]'
	@touch $@

$(CHECKOV_VENV)/.installed: policies/checkov/requirements.txt policies/checkov/requirements.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -c policies/checkov/requirements.lock -r policies/checkov/requirements.txt
	@touch $@

$(POLICY_VENV)/.installed: policies/pulumi/requirements.txt policies/pulumi/requirements.lock
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install -q -c policies/pulumi/requirements.lock -r policies/pulumi/requirements.txt
	@touch $@

$(MUTATION_VENV)/.installed: scripts/mutation/requirements.txt scripts/mutation/requirements.lock
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install -q -c scripts/mutation/requirements.lock -r scripts/mutation/requirements.txt
	@touch $@

setup: $(BIN)/.installed $(CHECKOV_VENV)/.installed $(POLICY_VENV)/.installed tools reference

tools:
	@bash scripts/ensure-tools

# The upstream CRDs, chart defaults and IAM policies the tests and `mlplat validate` read from
# ../shared/reference: downloaded where missing from the commits scripts/reference.lock.json pins, each
# checked against its sha256 (files already there with the right checksum are not fetched again).
reference:
	$(PYTHON) scripts/fetch-reference

lint: $(BIN)/.installed $(CHECKOV_VENV)/.installed $(POLICY_VENV)/.installed
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

typecheck: $(BIN)/.installed $(CHECKOV_VENV)/.installed $(POLICY_VENV)/.installed
	bash scripts/typecheck

pytest: setup
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: setup lint pytest

plan: $(BIN)/.installed $(POLICY_VENV)/.installed
	$(BIN)/mlplat plan --env $(ENV)

plans: $(BIN)/.installed $(POLICY_VENV)/.installed
	@for e in $(ENVS); do $(BIN)/mlplat plan --env $$e || exit $$?; done

validate: setup
	$(BIN)/mlplat validate

# The files GitHub or Terraform read before any Python runs (mlplat/generate.py); a test runs --check.
generate: $(BIN)/.installed
	$(BIN)/mlplat generate

# Scoped to the gate modules (scripts/mutation/run.py MODULES); MODULES="config promote" narrows it,
# SAMPLE=100 runs that many mutants per module drawn at random (an estimate, reported as one).
mutation: setup $(MUTATION_VENV)/.installed
	$(BIN)/python scripts/mutation/run.py $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULES)

demo: setup
	$(BIN)/mlplat demo

lock:
	rm -rf build/lock && $(PYTHON) -m venv build/lock
	build/lock/bin/pip install -q -e '.[dev,runtime]'
	{ echo "# Constraints for the project's .venv (pip install -c requirements.lock). Regenerate with: make lock"; \
	  build/lock/bin/pip freeze --exclude-editable | grep -v '^mlplat'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf build
