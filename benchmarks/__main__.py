"""Run every ``benchmarks/bench_*.py`` and rewrite BENCHMARKS.md.

Usage: ``python -m benchmarks [--quick] [--only NAME]``. Each module has
``run(quick: bool) -> list[Section]``; peers and lumos run on the same workload in the same
process, one after the other, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import pkgutil
import sys
from pathlib import Path

import benchmarks
from benchmarks._common import machine

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    parser.add_argument("--only", help="run only benchmarks/bench_<ONLY>.py")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    if args.only:
        names = [n for n in names if n == f"bench_{args.only}"]
        if not names:
            print(f"no benchmark named {args.only!r}", file=sys.stderr)
            return 2
    sections = []
    for name in names:
        print(f"running {name} ...", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        sections += module.run(quick=args.quick)
    today = datetime.date.today().isoformat()
    text = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`); do not edit by hand. Every figure",
        "is measured in one process run, lumos and the peer library on the same workload,",
        "best of several repeats after a warm-up. Ratios: **peer ÷ lumos** (> 1: lumos is",
        "faster) and **lumos ÷ floor**, where the floor is the time the model itself needs",
        "for the same evaluations in one call (no explainer overhead).",
        "",
        f"Run on {today}{' (quick mode)' if args.quick else ''}:",
        "",
        *machine(),
        "",
    ]
    text += [s.markdown() for s in sections]
    gpu = ROOT / "benchmarks" / "results" / "gpu.md"
    if gpu.exists() and not args.only:
        text += [
            "## GPU (recorded by hand)",
            "",
            "CI and this machine have no GPU; `python -m benchmarks.gpu --out "
            "benchmarks/results/gpu.md` on a CUDA machine records these, and `make bench` "
            "copies the latest record here unchanged.",
            "",
            gpu.read_text(encoding="utf-8"),
        ]
    Path(args.out).write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
