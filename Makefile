# The two commands: `make reproduce` (whole DAG at the laptop scale, figures, report) and
# `make test`. Each target creates .venv when it is missing; every pip call uses constraints.txt,
# which pins the CPU torch wheel (an unconstrained resolve pulls a multi-GB CUDA build).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
SCALE ?= laptop
EXP ?=
SMK := $(VENV)/bin/snakemake --config scale=$(SCALE) $(if $(EXP),only=$(EXP))

.PHONY: reproduce test test-unit test-portable lint format bench dry-run clean-results paper-deps browser-deps

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

reproduce: $(STAMP)
	@start=$$(date +%s); $(SMK) && mkdir -p results && echo $$(( $$(date +%s) - start )) > results/reproduce_$(SCALE)_seconds.txt
	$(SMK) --report paper/report.html
	@$(VENV)/bin/alignlab markers --scale $(SCALE)
	@test -f paper/main.pdf && echo "paper: paper/main.pdf" || echo "paper: no TeX here (Debian's texlive + latexmk build paper/main.pdf); the report paper/report.html is the product"

dry-run: $(STAMP)
	$(SMK) -n

test: $(STAMP)
	$(PY) -m pytest

# The unit tests alone (no Snakemake run): quick feedback while editing.
test-unit: $(STAMP)
	$(PY) -m pytest -m "not workflow"

# fp32 rounding depends on the CPU's kernels: the suite must pass under each of these choices.
test-portable: $(STAMP)
	$(PY) -m pytest
	MKL_ENABLE_INSTRUCTIONS=AVX2 $(PY) -m pytest
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest

SMK_FILES := Snakefile paper/rules.smk lib/alignlab/workflow/modular.smk $(wildcard experiments/*/rules.smk)

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests bench experiments paper conftest.py
	$(VENV)/bin/ruff format --check lib tests bench experiments paper conftest.py
	$(VENV)/bin/snakefmt --check $(SMK_FILES)

format: $(STAMP)
	$(VENV)/bin/snakefmt $(SMK_FILES)
	$(VENV)/bin/ruff format lib tests bench experiments paper conftest.py
	$(VENV)/bin/ruff check --fix lib tests bench experiments paper conftest.py

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# Debian's TeX for paper/main.pdf (latexmk, pdfLaTeX, natbib): `make reproduce` builds the PDF
# where it is installed, and CI installs it so that the smoke DAG builds and checks the PDF.
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
paper-deps:
	@command -v latexmk >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); }

# Debian's Chromium and its WebDriver for the explorer's browser test (tests/test_workflow.py);
# selenium itself comes with `pip install .[dev]`. No browser is downloaded at install time.
BROWSER_PACKAGES := chromium chromium-driver
browser-deps:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); }

clean-results:
	rm -rf results data/*/ paper/figures/*/ paper/generated paper/explorer .snakemake
