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

# nvcc and the CUDA headers from PyPI, to compile-check the CUDA sources on
# machines without a GPU (tools/check_cuda.py); about 350 MB, installed once.
CUDA_TOOLKIT ?= $(VENV)/cuda-toolkit
CUDA_PACKAGES ?= "nvidia-cuda-nvcc>=13,<14" "nvidia-cuda-runtime>=13,<14" \
	"nvidia-cuda-cccl>=13,<14" "nvidia-cuda-crt>=13,<14"

DEPS_STAMP := $(VENV)/.stamp-deps
PKG_STAMP := $(VENV)/.stamp-package
CUDA_STAMP := $(VENV)/.stamp-cuda-toolkit
CUDA_CHECK_STAMP := $(VENV)/.stamp-cuda-check
NATIVE_SOURCES := $(shell find csrc -type f 2>/dev/null) setup.py \
	tools/build_backend.py

.PHONY: install demo test docs bench data clean check-cuda check-install

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(PY) pyproject.toml Makefile
	# torch first and pinned, so that nothing below pulls another build.
	$(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install "setuptools>=64" wheel ninja build numpy scipy tqdm \
		pytest torch-geometric pymetis sphinx hypothesis matplotlib
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

$(CUDA_STAMP): $(PY)
	rm -rf $(CUDA_TOOLKIT)
	$(PIP) install --quiet --target $(CUDA_TOOLKIT) $(CUDA_PACKAGES)
	touch $@

# Every csrc/**/*.cu compiled to an object file with nvcc against torch's
# headers; fails when one does not compile. Reruns only when csrc/ changes.
$(CUDA_CHECK_STAMP): $(CUDA_STAMP) $(DEPS_STAMP) $(NATIVE_SOURCES) \
		tools/check_cuda.py
	$(PY) tools/check_cuda.py --toolkit $(CUDA_TOOLKIT) --build build/cuda-check
	touch $@

check-cuda: $(CUDA_CHECK_STAMP)

test: install data check-cuda
	TORCH_AUTOSCALE_DATA="$(abspath $(DATA_DIR))" \
	TORCH_AUTOSCALE_CUDA_TOOLKIT="$(abspath $(CUDA_TOOLKIT))" \
		$(PY) -m pytest test

# pip install of the sdist into a fresh venv that has torch (a dependency
# install), then a tiny training with the native ops; a few minutes, most of
# them compiling _C, so not part of `make test` (.ci/run runs both).
check-install: $(DEPS_STAMP)
	$(PY) tools/check_install.py --torch "torch==$(TORCH_VERSION)" \
		--python "$(PYTHON)"

docs: install
	$(PY) -m sphinx -W --keep-going -b html docs/source docs/build/html

bench: install data
	$(PY) benchmark/ops.py --out benchmark/results/ops.md
	$(PY) examples/train_gcn.py --dataset cora --root "$(DATA_DIR)" --runs 5 --quiet

clean:
	rm -rf build docs/build docs/source/generated *.egg-info \
		torch_autoscale/_build_info.py
	find . -name '*.so' -path './torch_autoscale/*' -delete
