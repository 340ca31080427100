from dataclasses import dataclass

import pytest

from gencrs.config import load_config
from gencrs.errors import GencrsError


@dataclass
class Cfg:
    name: str = "a"
    lr: float = 1e-3
    steps: int = 10
    data_dir: str | None = None


def test_defaults_yaml_then_command_line(tmp_path):
    (tmp_path / "c.yaml").write_text("name: from_yaml\nsteps: 20\n")
    cfg = load_config(Cfg, ["--config", str(tmp_path / "c.yaml"), "steps=30", "--lr=0.5"])
    assert cfg == Cfg(name="from_yaml", lr=0.5, steps=30)
    assert load_config(Cfg, []) == Cfg()


@pytest.mark.parametrize("argv, message", [
    (["nope=1"], "bad config"),
    (["steps=ten"], "bad config"),
    (["--config", "/no/such.yaml"], "not found"),
    (["positional"], "unexpected argument"),
])
def test_bad_configs_are_one_line_errors(argv, message):
    with pytest.raises(GencrsError, match=message) as err:
        load_config(Cfg, argv)
    assert "\n" not in str(err.value)


def _recipe_config_classes() -> dict:
    import importlib.util
    from pathlib import Path

    from eval.table import TableConfig
    from gencrs.semantic_ids import SemanticIdConfig
    from gencrs.teachers.context_encoder import ContextEncoderConfig
    from gencrs.teachers.rec_train import RecTeacherConfig
    from gencrs.tiny_base import TinyBaseConfig
    from gencrs.training.sft import SFTRunConfig

    spec = importlib.util.spec_from_file_location("sft_conkd_recipe", Path(__file__).parents[2] / "recipes" / "sft_conkd.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return {"sft_conkd": recipe.SFTConKDRecipeConfig, "dialogue_teacher": SFTRunConfig,
            "rec_teacher": RecTeacherConfig, "tiny_base": TinyBaseConfig, "context_encoder": ContextEncoderConfig,
            "semantic_ids": SemanticIdConfig, "table": TableConfig}


def test_shipped_configs_load_and_students_fit_their_teachers():
    """Every recipes/configs/*.yaml loads into its recipe's config (no unknown or mistyped field), and a student that
    starts from a dialogue teacher's adapter (init_adapter) has a teacher config with the same base, codes and LoRA
    shapes, so the 8B chain that cannot run here at least fits together."""
    from pathlib import Path

    classes = _recipe_config_classes()
    configs = {}
    for path in sorted((Path(__file__).parents[2] / "recipes" / "configs").glob("*.yaml")):
        kind = next((k for k in classes if path.stem.startswith(k)), None)
        assert kind, f"{path.name}: no recipe config class for this name; add its prefix to _recipe_config_classes"
        configs[path.stem] = load_config(classes[kind], ["--config", str(path)])
    assert {"sft_conkd_redial_8b_qlora", "dialogue_teacher_redial_8b", "sft_conkd_inspired_8b_qlora"} <= configs.keys()
    teachers = {f"{c.out}/adapter": c for name, c in configs.items() if name.startswith("dialogue_teacher")}
    starting = [c for c in configs.values() if getattr(c, "init_adapter", None)]
    assert len(starting) >= 2
    for student in starting:
        teacher = teachers[student.init_adapter]
        assert student.init_adapter == student.dialogue_teacher
        for field in ("dataset", "base_model", "semantic_ids", "lora_r", "lora_alpha", "load_in_4bit"):
            assert getattr(student, field) == getattr(teacher, field), (student.out, field)
    # a CPU student that builds what it lacks names the configs that build it: its dialogue teacher's config writes
    # its dialogue_teacher, over the base its tiny-base config writes (the full fine-tuning student starts from the
    # teacher's model, base_model = dialogue_teacher)
    by_path = {f"recipes/configs/{name}.yaml": c for name, c in configs.items()}
    builders = [c for name, c in configs.items() if name.startswith("sft_conkd") and c.build_missing and c.finetune == "full"]
    assert len(builders) >= 2
    for student in builders:
        teacher, tiny = by_path[student.dialogue_teacher_config], by_path[student.tiny_base_config]
        assert f"{teacher.out}/model" == student.dialogue_teacher and teacher.semantic_ids == student.semantic_ids
        # the tiny base is built where the teacher reads it: its config's out, or the student's dialogue_teacher_base
        assert teacher.base_model == (student.dialogue_teacher_base or tiny.out)
        assert student.base_model in (student.dialogue_teacher, tiny.out)
    # the chains' semantic IDs are built by their own config, over the dataset that reads them
    codes = {c.out: c for name, c in configs.items() if name.startswith("semantic_ids")}
    readers = [c for name, c in configs.items() if name.startswith(("dialogue_teacher", "sft_conkd"))
               and c.semantic_ids in codes]
    assert {c.dataset for c in readers} >= {"redial", "inspired"}
    catalog = {"redial_mentions": "redial", "redial_extended": "redial"}  # ReDial's train variants share its catalog
    for reader in readers:
        assert catalog.get(codes[reader.semantic_ids].dataset, codes[reader.semantic_ids].dataset) == \
            catalog.get(reader.dataset, reader.dataset), reader.out
    # a table row trained by a config as it is (no overrides): seed 0's run is what that config writes, the chain's run
    tables = [c for name, c in configs.items() if name.startswith("table")]
    assert len(tables) >= 2
    for table in tables:
        for row in (r for r in table.rows if len(r.train) == 3):
            assert by_path[row.train[2]].out == row.run, (row.train[2], row.name)
