"""Write a recommendation teacher that averages trained ones (gencrs.teachers.rec.RecTeacherEnsemble): its P(item |
context) is the mean of the members'. Nothing is trained; OUT/teacher/teacher.json names the members.

    python recipes/rec_teacher_ensemble.py 'members=[runs/A/teacher,runs/B/teacher]' out=runs/rec_teacher_ensemble

OUT/teacher is used wherever a rec teacher is: `python -m eval run model=OUT/teacher`, a student's `rec_teacher=`.
"""

import sys
from dataclasses import dataclass, field

from gencrs.cli import run_recipe
from gencrs.teachers.rec import RecTeacherEnsemble


@dataclass
class EnsembleConfig:
    members: list[str] = field(default_factory=list)  # trained rec teachers' OUT/teacher directories (2 or more)
    out: str = "runs/rec_teacher_ensemble"


def write_ensemble(cfg: EnsembleConfig) -> dict:
    ensemble = RecTeacherEnsemble.write(f"{cfg.out}/teacher", cfg.members)
    return {"teacher": f"{cfg.out}/teacher", "members": cfg.members, "items": len(ensemble.item_ids)}


if __name__ == "__main__":
    sys.exit(run_recipe("rec_teacher_ensemble", EnsembleConfig, write_ensemble))
