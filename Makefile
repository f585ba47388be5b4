# Through the NAT: two commands.
#   make lab   - create .venv if missing, install, open the course in JupyterLab
#   make test  - the same environment, then every test (unit, notebooks, labs sync, lint)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.p2plab-installed
PORT   ?= 8888

.PHONY: lab test site system-deps clean-labs bench

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --port=$(PORT) --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root,) course/00-start-here.ipynb

system-deps:
	@bash tools/system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m p2plab.labs build --check
	$(PY) -m pytest

site: $(STAMP)
	$(PY) tools/build_site.py

bench: $(STAMP)
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/sim_throughput.py

clean-labs: $(STAMP)
	$(PY) -m p2plab lab down --all
