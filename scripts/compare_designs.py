"""Train candidate designs for equal training time and compare their learning curves.

    python scripts/compare_designs.py --corpus ../shared/corpus --runs RUNS_DIR \
        --minutes 30 --every 5 [--parallel 2] rtsep/train/A.toml rtsep/train/B.toml [--init shipped]

Each recipe trains in RUNS_DIR/<recipe stem> (resumed if it exists), --parallel at a time (an
`rtsep train` process each, log in RUNS_DIR/<recipe stem>.log), with the threads its recipe
gives, for --minutes of training CPU time (the trainer's and its loader's, validation
excluded: time paused or waiting for a core is not counted), validated on the split and on the
user scenes every --every minutes. Writes RUNS_DIR/compare.md (the
table) and RUNS_DIR/compare.png (the curves); docs/model.md quotes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtsep.train.compare import plot_curves, render_table, train_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", type=Path, help="candidate recipes (TOML)")
    parser.add_argument("--corpus", required=True, help="corpus folder with manifest.csv")
    parser.add_argument("--runs", required=True, type=Path, help="folder for the runs")
    parser.add_argument("--minutes", type=float, default=30.0, help="training CPU minutes each")
    parser.add_argument("--every", type=float, default=5.0, help="CPU minutes between marks")
    parser.add_argument(
        "--parallel", type=int, default=1, help="candidates trained at once (2: one per core)"
    )
    parser.add_argument("--init", help="starting weights for every candidate (else recipe's)")
    args = parser.parse_args()
    candidates = train_candidates(
        args.recipes,
        corpus=args.corpus,
        runs_root=args.runs,
        minutes=args.minutes,
        mark_minutes=args.every,
        init=args.init,
        parallel=args.parallel,
    )
    table = render_table(candidates)
    (args.runs / "compare.md").write_text(table)
    plot_curves(candidates, args.runs / "compare.png")
    print(table, end="")
    print(f"wrote {args.runs / 'compare.md'} and {args.runs / 'compare.png'}")


if __name__ == "__main__":
    main()
