"""Train the quickstart model on scikit-learn's bundled breast-cancer data.

Writes data/train.csv, data/eval.csv and artifacts/model.joblib next to this
file, or under ``--out DIR`` (examples/mlflow trains with this same script).
Deterministic: the same code and data give the same bytes, so a re-run does not
change the plan — while editing a hyper-parameter below (or ``--C``) does: a
new model version.

The model is fitted on a DataFrame, so it knows its columns by name
(``feature_names_in_``): mlx records that input schema with each version, and
the gateway takes a request's columns by name, in any order, refusing a
misspelled or missing one — never a silent wrong answer.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42
C = 1.0
MAX_ITER = 500

HERE = Path(__file__).resolve().parent


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="spec directory to write into")
    parser.add_argument("--C", type=float, default=C, help="inverse regularisation strength")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    data = load_breast_cancer()
    features = [name.replace(" ", "_") for name in data.feature_names]
    x_train, x_eval, y_train, y_eval = train_test_split(
        data.data, data.target, test_size=0.3, random_state=SEED, stratify=data.target
    )
    # a "site" column gives eval gates a slice to judge per hospital site
    sites = ["north", "south", "east"]
    header = [*features, "site", "malignant"]

    def rows(x, y, offset):  # type: ignore[no-untyped-def]
        # target 0 = malignant in scikit-learn's encoding: store it as malignant = 1
        return [
            [*(round(float(v), 6) for v in xs), sites[(i + offset) % 3], int(1 - t)]
            for i, (xs, t) in enumerate(zip(x, y, strict=True))
        ]

    write_csv(out / "data" / "train.csv", header, rows(x_train, y_train, 0))
    write_csv(out / "data" / "eval.csv", header, rows(x_eval, y_eval, 1))

    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=MAX_ITER))
    model.fit(pd.DataFrame(x_train, columns=features), 1 - y_train)
    (out / "artifacts").mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "artifacts" / "model.joblib")
    # a request body for the served model (`curl … -d @request.json`): two eval biopsies
    request = {"dataframe_split": {"columns": features, "data": x_eval[:2].round(6).tolist()}}
    (out / "request.json").write_text(json.dumps(request) + "\n")
    acc = model.score(pd.DataFrame(x_eval, columns=features), 1 - y_eval)
    print(f"trained: {len(x_train)} train rows, {len(x_eval)} eval rows, eval accuracy {acc:.3f}")
    print(f"wrote {out / 'artifacts' / 'model.joblib'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
