# bounceflow: `make run` starts the whole system locally, `make test` runs the suite.
# Everything needed is installed here (venv, Python packages, Kafka jars from
# Maven Central), so both work on a machine that has never seen the project.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
PACKAGES := common services/ingress services/sender services/bounce-receiver \
            services/classifier services/notifier devkit
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: install run stop status test bench demo schemas clean help

help:
	@echo "make run | stop | status | test | bench | demo | install | schemas | clean"

$(STAMP): $(PYPROJECTS) requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip wheel setuptools
	$(PIP) install -q --disable-pip-version-check -c constraints.txt \
		$(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	touch $@

install: $(STAMP)
	scripts/kafka.sh install

run: install
	scripts/kafka.sh start
	$(VENV)/bin/bounceflow create-topics
	$(PY) -m bounceflow_devkit.stack start

stop:
	-test -x $(PY) && $(PY) -m bounceflow_devkit.stack stop
	scripts/kafka.sh stop

status:
	@scripts/kafka.sh status || true
	@test -x $(PY) && $(PY) -m bounceflow_devkit.stack status

test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/run_all.py

demo: run
	$(PY) -m bounceflow_devkit.demo

schemas: install
	$(VENV)/bin/bounceflow schemas --write

clean: stop
	rm -rf var
