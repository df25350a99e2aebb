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
	# The `spark` extra, for the Spark engine's tests (they need Java 17).
	$(PIP) install "pyspark>=3.5"
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

# Every benchmark, in the order of benchmark/README.md, each writing its table
# and raw results under benchmark/results/ (replacing the records it redoes);
# then the docs' plots. Hours of CPU time; the partition benchmark needs about
# 20 GiB for its largest graph, the reliability cases mount tmpfs (as root).
BENCH_RESULTS := benchmark/results
BENCH_SMALL := $(PY) benchmark/small/run.py --root "$(DATA_DIR)" --threads 1
BENCH_GST := $(PY) benchmark/gst.py --root "$(DATA_DIR)" --seeds 3 \
	--eval-every 5 --finetune-epochs 100 --threads 1 --full-pool mean
BENCH_MALLOC := MALLOC_MMAP_THRESHOLD_=4294967296 \
	MALLOC_TRIM_THRESHOLD_=4294967296

bench: install data
	@if [ -x "$(SHARED_DATA)/unpack.sh" ]; then \
		bash "$(SHARED_DATA)/unpack.sh" "$(DATA_DIR)" malnet_tiny tolokers; fi
	$(BENCH_SMALL) --seeds 20 --configs appnp_cora gat_cora gcn_cora \
		gcnii_cora
	$(BENCH_SMALL) --seeds 5 --configs gcn_amazon_computers gcn_coauthor_cs
	$(BENCH_SMALL) --seeds 3 --configs appnp_coauthor_cs gat_coauthor_cs \
		gcnii_coauthor_cs gat_amazon_computers gcnii_amazon_computers
	$(BENCH_SMALL) --seeds 10 --configs appnp_amazon_computers
	for o in "" --no-warm-up --partition-seed; do $(BENCH_SMALL) --seeds 20 \
		--configs gcn_cora --curves $$o || exit 1; done
	$(BENCH_SMALL) --seeds 20 --configs gcn_cora --curves \
		--set num_parts=24 batch_size=8 grad_clip=null
	$(BENCH_SMALL) --seeds 20 --configs gcn_amazon_computers gcn_coauthor_cs \
		--curves
	for d in float16 float32; do $(BENCH_SMALL) --seeds 5 --modes gas \
		--configs gcn_cora gcn_amazon_computers --history-dtype $$d \
		--out $(BENCH_RESULTS)/history_dtype.md || exit 1; done
	for m in lpmetis metis; do $(BENCH_SMALL) --seeds 5 --modes gas \
		--configs gcn_amazon_computers gcn_coauthor_cs --partition $$m \
		--out $(BENCH_RESULTS)/partition_gas.md || exit 1; done
	$(PY) benchmark/small/overhead.py --root "$(DATA_DIR)" --epochs 20
	$(BENCH_MALLOC) $(PY) benchmark/small/overhead.py --root "$(DATA_DIR)" \
		--epochs 20 --out $(BENCH_RESULTS)/small_overhead_malloc.md
	$(PY) benchmark/small/transpose.py --root "$(DATA_DIR)" --epochs 20
	$(PY) benchmark/cpu_malloc.py --root "$(DATA_DIR)" --repeats 3 --epochs 20
	$(PY) benchmark/partition.py --root "$(DATA_DIR)" --threads 1
	$(PY) benchmark/partition_spark.py --root "$(DATA_DIR)" \
		--edges 0.01 0.1 0.3 1 3 --timeout 1200
	$(PY) benchmark/memory.py --epochs 2 --threads 1
	$(PY) benchmark/out_of_core.py --sizes 4000000 16000000 70000000 --threads 2 --memory-limit 8 --skip-done
	$(PY) benchmark/out_of_core.py --sizes 4000000 16000000 70000000 --locality 4 --contiguous --threads 2 --memory-limit 8 --skip-done
	$(BENCH_GST) --epochs 50
	$(BENCH_GST) --epochs 120 --variants full gst-efd \
		--out $(BENCH_RESULTS)/gst_e120.md
	$(PY) benchmark/distributed.py --root "$(DATA_DIR)" --seeds 5
	$(PY) benchmark/distributed.py --datasets synthetic --num-nodes 200000 \
		--epochs 10 --seeds 2 --out $(BENCH_RESULTS)/distributed_large.md
	$(PY) benchmark/ops.py
	$(PY) benchmark/reliability.py
	$(PY) benchmark/augmentation.py --root "$(DATA_DIR)" --seeds 3 --threads 1
	$(PY) benchmark/plots.py

clean:
	rm -rf build docs/build docs/source/generated *.egg-info \
		torch_autoscale/_build_info.py
	find . -name '*.so' -path './torch_autoscale/*' -delete
