import logging

from gencrs.io import last_complete_checkpoint


def make_checkpoint(root, step: int, complete: bool):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_last_complete_checkpoint_passes_over_half_written_ones(tmp_path, caplog):
    """Numeric order (10 after 9), and a checkpoint without trainer_state.json (killed while saving) is passed over
    with a warning and kept on disk."""
    make_checkpoint(tmp_path, 2, True)
    make_checkpoint(tmp_path, 9, True)
    make_checkpoint(tmp_path, 10, True)
    half = make_checkpoint(tmp_path, 12, False)
    (tmp_path / "checkpoint-last").mkdir()  # not a step: ignored
    with caplog.at_level(logging.WARNING, logger="gencrs.io"):
        assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert "checkpoint-12 was not finished" in caplog.text
    assert half.exists()


def test_last_complete_checkpoint_none_when_nothing_to_resume(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    make_checkpoint(tmp_path, 4, False)
    assert last_complete_checkpoint(tmp_path) is None
