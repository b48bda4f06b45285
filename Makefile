# webrtc-genesys: the two commands a new user needs are `make revert` and `make test`.
# Every target installs what it is missing first (Docker engine, compose v2, virtualenv,
# JsSIP clients, the local base image), so they run on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
PLAYBOOK    := $(BIN)/ansible-playbook
INVENTORY   ?= inventories/lab/hosts.yml
BASE_IMAGE  := local/debian:sid
LAB_ROOT    := /opt/webrtc-genesys-lab
PYTEST_OPTS ?=
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup host venv clients base-image lab deploy revert rollback status genesys-bindings image-pins \
        test lint unit molecule molecule-static molecule-kamailio integration lab-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# ---- set-up (each step skips what is already there) -----------------------------------
host: ## Install and start the Docker engine and compose v2 (Debian), SIPp, Node
	@bash scripts/bootstrap-host.sh

$(BIN)/.installed: requirements.txt requirements-runtime.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# The collection itself on the collections path of ansible.cfg, so that the playbooks call its
# roles by FQCN (gcti.webrtc_genesys.<role>) from a checkout.
COLLECTION_LINK := $(VENV)/collections/ansible_collections/gcti/webrtc_genesys
$(COLLECTION_LINK): | $(BIN)/.installed
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

venv: $(BIN)/.installed $(COLLECTION_LINK) ## Python virtualenv with the pinned tool chain, the collection linked

# npm ci, then the browser phone's bundle (JsSIP + browser/phone.js, esbuild) -> browser/dist/.
tests/clients/node_modules/.installed: tests/clients/package.json tests/clients/package-lock.json \
                                       tests/clients/browser/phone.js
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	cd tests/clients && npm run --silent build:phone
	touch $@

clients: tests/clients/node_modules/.installed ## JsSIP test clients (npm) and the browser phone bundle

base-image: host ## Local Debian base image (no registry here)
	@bash scripts/build-base-image.sh $(BASE_IMAGE)

setup: host venv clients base-image ## Everything above

# ---- the lab and the two switches --------------------------------------------------------
lab: setup ## Bring the embedded lab up (certificate, image, Genesys stand-in)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/lab.yml

deploy: lab ## Deploy the whole gateway in the inventory's mode (webrtc_mode)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml

revert: lab ## Switch the lab to kamailio mode (playbooks/revert.yml)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/revert.yml

status: ## Show the gateway's mode, services, bindings, unbound DNs and calls (read-only)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/status.yml

rollback: lab ## Switch the lab to static mode (playbooks/rollback.yml)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/rollback.yml

image-pins: host base-image ## Move the image's package pins to what the Debian archive has now (then: make test)
	python3 scripts/image_pins.py --base-image $(BASE_IMAGE)

genesys-bindings: ## Print the Genesys stand-in's bindings as JSON
	@python3 scripts/genesys_bindings.py

# ---- tests -----------------------------------------------------------------------------
test: setup lint lab unit molecule integration bench-smoke ## Run every test (lint, unit, molecule, integration, benchmark smoke)

lint: venv ## yamllint, ansible-lint (production profile), ruff, mypy, ansible-test sanity, changelog fragments
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production --offline
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	bash scripts/sanity.sh
	$(BIN)/antsibull-changelog lint

unit: venv lab ## Template rendering + daemon validation (nginx -t, kamailio -c, Asterisk load)
	WEBRTC_REQUIRE_DAEMONS=1 WEBRTC_REQUIRE_BROWSER=1 $(BIN)/pytest tests/unit $(PYTEST_OPTS)

molecule: molecule-static molecule-kamailio ## Both molecule scenarios on the lab

molecule-static: lab
	$(BIN)/molecule test -s static

molecule-kamailio: lab
	$(BIN)/molecule test -s kamailio

integration: lab clients ## Integration tests: real daemons, real wss clients, real registrar
	WEBRTC_REQUIRE_BROWSER=1 $(BIN)/pytest tests/integration $(PYTEST_OPTS)

# ---- clean-up --------------------------------------------------------------------------
lab-down: ## Remove the lab (containers, volumes, files under /opt/webrtc-genesys-lab)
	-@for p in $(LAB_ROOT)/gateway $(LAB_ROOT)/genesys $(LAB_ROOT)/genesys-b; do \
	  [ -f $$p/docker-compose.yml ] && docker compose --project-directory $$p down -v --remove-orphans; done
	rm -rf $(LAB_ROOT)

clean: lab-down ## lab-down, and remove the virtualenv and node modules
	rm -rf $(VENV) tests/clients/node_modules

# ---- benchmarks (bench/README.md, BENCHMARKS.md) ---------------------------------------
.PHONY: bench bench-smoke
BENCH_OPTS ?=

$(BIN)/.bench-installed: bench/requirements.txt $(BIN)/.installed
	$(BIN)/pip install -q -r bench/requirements.txt
	touch $@

bench: lab clients $(BIN)/.bench-installed ## Benchmarks on the lab (N=1000 DNs, M=200 clients) -> bench/results
	$(BIN)/python -m bench.run --mode full --out bench/results $(BENCH_OPTS)

bench-smoke: lab clients $(BIN)/.bench-installed ## The benchmarks' smoke run (N=20, M=5), well-formed results only
	$(BIN)/pytest tests/bench_smoke $(PYTEST_OPTS)
