"""Validation on load: a malformed record is an error naming file and line, or (lenient mode) a counted, reported skip."""

import json
import logging

from gencrs.errors import DataError

log = logging.getLogger(__name__)


class Problems:
    def __init__(self, strict: bool = True):
        self.strict = strict
        self.found: list[str] = []  # records skipped (lenient mode)
        self.warnings: list[str] = []  # records kept, with a part of them not usable (e.g. a broken annotation)

    def report(self, path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        if self.strict:
            raise DataError(f"{where}: {message}")
        self.found.append(f"{where}: {message}")

    def warn(self, path, line: int | None, message: str) -> None:
        self.warnings.append(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")

    def summary(self) -> list[str]:
        """Notes for the dataset, also logged as warnings, so that nothing is skipped silently."""
        notes = []
        for what, found in (("skipped {} malformed record(s)", self.found), ("{} warning(s)", self.warnings)):
            if found:
                shown = "; ".join(found[:5]) + ("; ..." if len(found) > 5 else "")
                notes.append(f"{what.format(len(found))}: {shown}")
                log.warning(notes[-1])
        return notes


def read_jsonl(path, problems: Problems):
    """(line number, parsed record) for every non-blank line; a line that is not JSON is reported and skipped."""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                problems.report(path, line_no, f"invalid JSON ({e.msg} at column {e.colno})")
