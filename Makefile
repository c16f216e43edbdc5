# Two entry points: `make run` and `make test`. Both create .venv on first use
# and (re)install when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.clbench-installed
DATA_ROOT ?= $(abspath ../shared/data)

.PHONY: install lint run test test-real test-slow test-cluster bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The main job: the plastic learners against naive on the offline digits benchmark (task-incremental, seed 0),
# one small sweep on a local Ray, then its report table. Cells whose record exists are skipped.
run: install
	$(BIN)/clbench sweep --benchmark split_digits --strategy naive,sparse_syn,kwinners,hebbian --scenario task \
		--seeds 0

# Lint (pyflakes, pycodestyle, import order; settings in pyproject.toml), then the default suite.
lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -q

# Tests that read the real data sets (MNIST) under DATA_ROOT: quick ones, then the long ones.
test-real: install
	CLBENCH_DATA_ROOT=$(DATA_ROOT) $(BIN)/python -m pytest -q -m "realdata and not slow"

test-slow: install
	CLBENCH_DATA_ROOT=$(DATA_ROOT) $(BIN)/python -m pytest -q -m slow

# A two-node Ray cluster on a loopback of its own (needs root for 'unshare --net').
test-cluster: install
	$(BIN)/python -m pytest -q -m cluster

# per-strategy ms/iteration, its growth over 50 tasks and the harness against a bare loop, one thread;
# on permuted MNIST (the 1000-1000 MLP) when DATA_ROOT holds MNIST, else on the offline digits
bench: install
	@if [ -d "$(DATA_ROOT)/MNIST/raw" ]; then \
		CLBENCH_DATA_ROOT=$(DATA_ROOT) $(BIN)/clbench bench -b permuted_mnist; \
	else $(BIN)/clbench bench -b permuted_digits; fi

clean:
	rm -rf $(VENV) build *.egg-info
