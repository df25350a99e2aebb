# Two commands on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) a local virtualenv in .venv and install everything
# into it; a second run skips what is already done.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_VERSION ?= 2.13.0
# Offline PyG dataset roots used by the data-dependent tests; unpacked into
# DATA_DIR when the archives are there, skipped cleanly otherwise.
SHARED_DATA ?= ../shared/data
DATA_DIR ?= data

DEPS_STAMP := $(VENV)/.stamp-deps
PKG_STAMP := $(VENV)/.stamp-package
NATIVE_SOURCES := $(shell find csrc -type f 2>/dev/null) setup.py

.PHONY: install demo test docs bench data clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(PY) pyproject.toml Makefile
	# torch first and pinned, so that nothing below pulls another build.
	$(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install "setuptools>=64" wheel ninja numpy scipy tqdm pytest \
		torch-geometric pymetis sphinx hypothesis
	touch $@

$(PKG_STAMP): $(DEPS_STAMP) $(NATIVE_SOURCES)
	$(PIP) install --no-build-isolation --no-deps -e ".[test]"
	touch $@

install: $(PKG_STAMP)

demo: install
	$(PY) examples/train_gcn.py

data:
	@if [ -x "$(SHARED_DATA)/unpack.sh" ]; then \
		bash "$(SHARED_DATA)/unpack.sh" "$(DATA_DIR)" planetoid amazon_coauthor tudataset; \
	else \
		echo "no dataset archives at $(SHARED_DATA); data tests will skip"; \
	fi

test: install data
	TORCH_AUTOSCALE_DATA="$(abspath $(DATA_DIR))" $(PY) -m pytest test

docs: install
	$(PY) -m sphinx -W --keep-going -b html docs/source docs/build/html

bench: install data
	$(PY) benchmark/ops.py --out benchmark/results/ops.md
	$(PY) examples/train_gcn.py --dataset cora --root "$(DATA_DIR)" --runs 5 --quiet

clean:
	rm -rf build docs/build docs/source/generated *.egg-info
	find . -name '*.so' -path './torch_autoscale/*' -delete
