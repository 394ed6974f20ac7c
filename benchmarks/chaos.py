"""The chaos loop as a command: ``--runs`` seeded runs from ``--seed`` (see
``tests/e2e/chaos.py``), each a five-VM migration with one fault; prints each run and
writes the table (runs, faults by kind, outcomes, time to recover) to ``--output``, keeping
what follows the notes marker of the earlier file (the causes of failed runs, by hand).

    .venv/bin/python benchmarks/chaos.py --runs 30 --seed 0 [--output docs/reliability.md]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.chaos import RunResult, run_many, table  # noqa: E402

NOTES = "<!-- notes: written by hand, kept when the table is made again -->"


def kept_notes(output: Path) -> str:
    """The hand-written part of an earlier table (what explains its failures), from NOTES on."""
    earlier = output.read_text() if output.exists() else ""
    return "\n" + earlier[earlier.index(NOTES) :] if NOTES in earlier else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="the first seed; runs use seed, seed+1, …")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    command = f"benchmarks/chaos.py --runs {args.runs} --seed {args.seed}"
    began = time.monotonic()

    def show(result: RunResult) -> None:
        print(result.report(), flush=True)

    with tempfile.TemporaryDirectory(prefix="ferry-chaos-") as work:
        results = run_many(Path(work), list(range(args.seed, args.seed + args.runs)), show)
    text = table(results, command) + f"\nThe {args.runs} runs took {time.monotonic() - began:.0f} s.\n"
    print(text)
    args.output.write_text(text + kept_notes(args.output))
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
