"""Planted-signal data in the `tenrec-video` schema, so that learning is measurable.

`generate_data("tenrec-video", n)` gives the article's schema and realistic, long-tailed
ids, but its targets are coin flips: no model can beat AUC 0.5 on them. Here every
target is overwritten with a known function of the features plus noise:

    z_c = E_c[value of column c]      E_c: a seeded table of N(0, 1) effects per categorical column
    s_t = standardize(sum_c PLANTED[t][c] * z_c)    (mean 0, std 1 over the rows)
    binary task t:      label ~ Bernoulli(sigmoid(LOGIT_SCALE * s_t))
    watching_times:     label = clip(round(WATCH_BASE + WATCH_SCALE * s_t + WATCH_NOISE * N(0, 1)), 0, 5)

Standardizing makes every task equally learnable whatever the seed draws for the effects.

A model that trains correctly learns the effects through its embeddings; the known
function also gives each task's ceiling (the score of the true function) on the held-out rows.
Runs inside the child only: numpy, pandas and merlin are imported in the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

SCHEMA_NAME = "tenrec-video"

#: Weights of the per-column effects in each target's function (binary: on the logit).
PLANTED: Dict[str, Dict[str, float]] = {
    "click": {"user_id": 1.5, "item_id": 1.5},
    "follow": {"user_id": 2.0, "video_category": 1.0},
    "like": {"item_id": 2.0, "age": 1.0},
    "share": {"user_id": 1.5, "item_id": -1.5},
    "watching_times": {"user_id": 1.0, "item_id": 0.8},
}
LOGIT_SCALE = 2.5
WATCH_BASE = 2.5
WATCH_SCALE = 1.2
WATCH_NOISE = 0.5


@dataclass
class PlantedData:
    schema: Any  # merlin.schema.Schema
    train: Any  # pandas.DataFrame
    holdout: Any  # pandas.DataFrame
    tasks: Dict[str, str]  # target -> "binary" | "regression"
    ceilings: Dict[str, float]  # held-out AUC (binary) or RMSE / label std (regression) of the true function


def task_types(schema: Any) -> Dict[str, str]:
    """Targets by the schema's own tags, checked against the planted function."""
    from merlin.schema import Tags

    tasks = dict.fromkeys(schema.select_by_tag(Tags.BINARY_CLASSIFICATION).column_names, "binary")
    tasks.update(dict.fromkeys(schema.select_by_tag(Tags.REGRESSION).column_names, "regression"))
    if set(tasks) != set(PLANTED):
        raise ValueError(
            f"the {SCHEMA_NAME} schema's targets {sorted(tasks)} are not the planted "
            f"ones {sorted(PLANTED)}: merlin changed the dataset"
        )
    return tasks


def make_data(rows: int, seed: int, holdout_fraction: float) -> PlantedData:
    """Generate `rows` rows, plant the targets, and split off the last rows as held-out data.

    Seeds numpy's global generator too: `generate_data` draws from it.
    """
    import numpy as np
    from merlin.datasets.synthetic import generate_data

    np.random.seed(seed)
    dataset = generate_data(SCHEMA_NAME, rows)
    schema = dataset.schema
    tasks = task_types(schema)
    frame = dataset.to_ddf().compute().reset_index(drop=True)
    if hasattr(frame, "to_pandas"):  # with cuDF the Dataset moved it to the GPU; plant on the CPU
        frame = frame.to_pandas()

    rng = np.random.default_rng(seed)
    columns = sorted({c for weights in PLANTED.values() for c in weights})
    effects = {c: rng.standard_normal(schema[c].int_domain.max + 1)[frame[c].to_numpy()] for c in columns}
    truth = {}
    for target, kind in tasks.items():
        mixed = sum(w * effects[c] for c, w in PLANTED[target].items())
        signal = (mixed - mixed.mean()) / mixed.std()
        dtype = schema[target].dtype.to_numpy
        if kind == "binary":
            truth[target] = LOGIT_SCALE * signal
            frame[target] = (rng.random(rows) < _sigmoid(truth[target])).astype(dtype)
        else:
            truth[target] = np.clip(WATCH_BASE + WATCH_SCALE * signal, 0, 5)
            noisy = truth[target] + WATCH_NOISE * rng.standard_normal(rows)
            frame[target] = np.clip(np.rint(noisy), 0, 5).astype(dtype)

    split = rows - int(rows * holdout_fraction)
    holdout = frame.iloc[split:].reset_index(drop=True)
    ceilings = {}
    for target, kind in tasks.items():
        labels, best = holdout[target].to_numpy(), truth[target][split:]
        ceilings[target] = auc(labels, best) if kind == "binary" else rmse(labels, best) / labels.std()
    return PlantedData(schema, frame.iloc[:split].reset_index(drop=True), holdout, tasks, ceilings)


def shuffle_targets(frame: Any, targets: List[str], seed: int) -> Any:
    """A copy with each target permuted on its own: the features no longer explain the labels."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    shuffled = frame.copy()
    for target in targets:
        shuffled[target] = rng.permutation(shuffled[target].to_numpy())
    return shuffled


def auc(labels: Any, scores: Any) -> float:
    """Exact ROC AUC (Mann-Whitney, ties counted half); NaN when a class is absent."""
    import numpy as np
    import pandas as pd

    labels = np.asarray(labels).ravel() > 0.5
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype="float64").ravel()).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def rmse(labels: Any, predictions: Any) -> float:
    import numpy as np

    diff = np.asarray(labels, dtype="float64").ravel() - np.asarray(predictions, dtype="float64").ravel()
    return float(np.sqrt(np.mean(diff**2)))


def _sigmoid(x: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))
