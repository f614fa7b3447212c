# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tools with dependency trees of their own (checkov) live in a virtualenv of their own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

DEMO_START ?= 2024-01-01
DEMO_DAYS ?= 3
DEMO_EVENTS ?= 200000
DEMO_FILES ?= 2000
DEMO_BAD_DAY ?=

.PHONY: install demo test dev bench clean package-job

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Local Spark's driver JVM starts faster from a class-data-sharing archive of a training run (~30 s, once per
# virtualenv; medallion_pipeline/resources/class_archive.py). Optional: Spark runs the same without it.
CLASS_ARCHIVE := $(VENV)/.class-archive
$(CLASS_ARCHIVE): $(STAMP)
	$(BIN)/python -m medallion_pipeline.resources.class_archive --force
	@touch $@

$(TOOLS_STAMP): deploy/requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r deploy/requirements-tools.txt
	@touch $@

install: $(STAMP) $(CLASS_ARCHIVE) $(TOOLS_STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: $(STAMP) $(CLASS_ARCHIVE) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/medallion generate --start $(DEMO_START) --days $(DEMO_DAYS) --events-per-day $(DEMO_EVENTS) --files-per-day $(DEMO_FILES) $(if $(DEMO_BAD_DAY),--bad-day $(DEMO_BAD_DAY))
	@# The run's own output is long: keep step progress, failures and alerts; exit with the run's status.
	@status=0; $(BIN)/medallion run --from $(DEMO_START) --to $$(date -u -d "$(DEMO_START) + $$(($(DEMO_DAYS) - 1)) days" +%F) \
		2> >(grep -E --line-buffered "STEP_(START|SUCCESS)|RUN_(SUCCESS|FAILURE)|ALERT|^  [a-z_ ]+: |failed:" >&2) || status=$$?; \
	$(BIN)/medallion query "SELECT dt, service, requests, status_5xx, round(success_rate, 4) AS success_rate, round(error_rate, 4) AS error_rate, round(latency_p95_ms, 1) AS p95_ms, unique_users, sessions FROM gold_daily_kpis ORDER BY dt, service"; \
	exit $$status

# The two virtualenvs install side by side (on a fresh clone, checkov's beside the project's), then the suite.
test:
	@$(MAKE) --no-print-directory -j2 $(CLASS_ARCHIVE) $(TOOLS_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

dev: $(STAMP) $(CLASS_ARCHIVE) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP) $(CLASS_ARCHIVE)
	$(BIN)/python benchmarks/pipeline_throughput.py
	$(BIN)/python benchmarks/incremental_bronze.py
	$(BIN)/python benchmarks/spark_floor.py
	$(BIN)/python benchmarks/fixed_cost.py

# The EMR Serverless job bundle (entrypoint, package, relocatable Python). Build it on Amazon Linux 2023 with
# Python 3.11 (the EMR runtime's platform): the archived interpreter runs only where it was built.
JOB_BUNDLE_URI ?= $(MEDALLION_EMR_JOB_BUNDLE_URI)
package-job: $(STAMP)
	$(BIN)/medallion package-job $(if $(JOB_BUNDLE_URI),--to $(JOB_BUNDLE_URI))

clean:
	rm -rf data .dagster_home
