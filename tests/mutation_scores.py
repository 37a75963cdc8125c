"""Per-file mutation scores of a `tests/mutate` run: killed (or timed out)
mutants over all mutants; a mutant no selected test reaches counts as
surviving; mutants a partial run (tests/mutate GLOB) did not reach are
left out. Usage: mutation_scores.py STAGE_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mutmut.stats import status_by_exit_code


def main(stage: str) -> int:
    rows = []
    for meta in sorted(Path(stage, "mutants", "src").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        status = [status_by_exit_code[c] for c in codes.values()]
        killed = sum(s in ("killed", "timeout") for s in status)
        total = sum(s not in ("skipped", "not checked") for s in status)  # a partial run: what it ran
        name = str(meta.relative_to(Path(stage, "mutants", "src")))[: -len(".meta")]
        rows.append((name, killed, total))
        print(
            f"{name:32} {killed:5}/{total:<5} {100 * killed / max(total, 1):5.1f}%  "
            + ", ".join(f"{s}: {status.count(s)}" for s in sorted(set(status)) if s != "killed")
        )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
