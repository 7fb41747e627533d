"""Mutation score per module from mutmut's results (``make mutate`` runs it after ``mutmut run``).

python tests/mutation/score.py [--min 90]: reads ``mutants/**/*.py.meta`` (mutmut 3's exit code per
mutant), counts each module's mutants by status, leaves out the mutants listed in
``tests/mutation/equivalent.txt`` (they cannot change behaviour; each line names the reason) and
those outside the ``FUNCTIONS`` chosen for a module, prints killed / scored per module and exits 1
when a module scores below ``--min`` percent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
from mutmut.stats import status_by_exit_code

HERE = Path(__file__).parent
FUNCTIONS = {"eval/ocr.py": ["normalise", "ocr_reward", "_target"]}
"""Modules of which only some functions are rules (the rest loads OCR engines)."""


def function_of(key: str) -> str:
    """``guard.ema.xǁEMAǁstep__mutmut_3`` -> ``EMA.step``; ``guard.ema.x_ema_decay__mutmut_1`` -> ``ema_decay``."""
    name = key.split(".")[-1].rsplit("__mutmut_", 1)[0]
    return name.removeprefix("x_") if name.startswith("x_") else ".".join(p for p in name[1:].split("ǁ") if p)


def equivalent_mutants(path: Path = HERE / "equivalent.txt") -> dict[str, str]:
    """Mutant key -> the reason it cannot change behaviour (lines ``key: reason``; ``#`` comments)."""
    lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()] if path.is_file() else []
    return {key.strip(): reason.strip() for key, reason in (line.split(":", 1) for line in lines if line.strip())}


def mutant_rows(mutants: Path) -> pd.DataFrame:
    """One row per mutant: module, function, key, status."""
    rows = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            rows.append({"module": module, "function": function_of(key), "key": key,
                         "status": status_by_exit_code[code]})
    return pd.DataFrame(rows, columns=["module", "function", "key", "status"])


def chosen(rows: pd.DataFrame) -> pd.DataFrame:
    """The mutants of the scored functions (all of a module's unless ``FUNCTIONS`` names some)."""
    return rows[[m not in FUNCTIONS or f in FUNCTIONS[m] for m, f in zip(rows.module, rows.function)]]


def scores(rows: pd.DataFrame, equivalent: dict[str, str]) -> pd.DataFrame:
    """Per module: killed, survived, other (no tests, timeout, ...), equivalent, and the percent killed of the rest."""
    chosen_rows = chosen(rows)
    chosen_rows = chosen_rows.assign(status=["equivalent" if k in equivalent else s
                                             for k, s in zip(chosen_rows.key, chosen_rows.status)])
    table = pd.crosstab(chosen_rows.module, chosen_rows.status)
    for column in ["killed", "survived", "equivalent", "not checked"]:
        table[column] = table.get(column, 0)
    scored = table.drop(columns=["equivalent", "not checked"]).sum(axis=1)
    table["scored"] = scored
    table["percent"] = (100 * table.killed / scored.clip(lower=1)).round(1)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable percent killed per module")
    parser.add_argument("--survivors", action="store_true", help="also list the surviving mutants of the scored functions (equivalent ones left out)")
    args = parser.parse_args()
    rows = mutant_rows(args.mutants)
    if rows.empty:
        parser.exit(2, f"error: no mutmut results under {args.mutants}; run `mutmut run` first\n")
    equivalent = equivalent_mutants()
    table = scores(rows, equivalent)
    print(table.to_string())
    if args.survivors:
        survived = chosen(rows)
        print("\n".join(k for k in survived[survived.status == "survived"].key if k not in equivalent))
    low = table[table.percent < args.min]
    unchecked = table[table["not checked"] > 0].index
    if len(unchecked):
        print(f"not all mutants were checked: {', '.join(unchecked)}", file=sys.stderr)
    if not low.empty:
        print(f"below {args.min}% killed: {', '.join(low.index)}", file=sys.stderr)
    return 1 if not low.empty else 0


if __name__ == "__main__":
    raise SystemExit(main())
