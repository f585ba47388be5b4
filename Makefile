# Through the NAT: two commands.
#   make lab   - create .venv if missing, install, open the course in JupyterLab
#   make test  - the same environment, then every test (unit, notebooks, labs sync, lint)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.p2plab-installed
PORT   ?= 8888
# Under CI=true as root, `make test` also runs the suite as an ordinary user and on a machine
# without namespaces (tools/ci-as-users.sh); P2PLAB_TEST_AS_USERS=1 asks for that outside CI too.
AS_USERS := $(if $(and $(filter 0,$(shell id -u)),$(filter true 1,$(CI) $(P2PLAB_TEST_AS_USERS))),yes,)
ROOT_REPORT := .test-reports/root.xml

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
	$(PY) -m pytest $(if $(AS_USERS),--junitxml=$(ROOT_REPORT))
	$(if $(AS_USERS),bash tools/ci-as-users.sh $(ROOT_REPORT))

site: $(STAMP)
	$(PY) tools/build_site.py

bench: $(STAMP)
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/sim_throughput.py

clean-labs: $(STAMP)
	$(PY) -m p2plab lab down --all
