"""LightGBM with a small grid tuned on the validation split (early stopping on it too)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from bench.accuracy.metrics import HIGHER_IS_BETTER, auroc, mae
from dbt_rfm.errors import RfmError

#: The light grid: every combination is fitted with early stopping on validation.
GRID: dict[str, tuple[Any, ...]] = {"num_leaves": (15, 63), "learning_rate": (0.05, 0.1)}
MAX_TREES = 500
EARLY_STOP = 30
#: One thread: on shared, oversubscribed cores OpenMP threads spin-wait for each other (the
#: 4-fit grid took 195 s with 2 threads under load; one fit takes 1.3 s with 1, 1.8 s with 2
#: when idle).
THREADS = 1


@dataclass(frozen=True)
class Fitted:
    """The chosen model.

    Attributes:
        booster: the LightGBM booster (predicts with its best iteration).
        params: chosen grid values and the number of trees.
        val_metric: the metric on validation of the chosen model.
    """

    booster: lgb.Booster
    params: dict[str, Any]
    val_metric: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float64 ``[N]`` scores (binary: probability) for float64 ``[N, F]`` features."""
        out = self.booster.predict(x, num_iteration=self.booster.best_iteration)
        return np.asarray(out, dtype=np.float64)


def fit_tuned(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    categorical: list[int],
    seed: int = 0,
) -> Fitted:
    """Fit every grid point on train, early-stop on val, keep the best by the task metric.

    Args:
        kind: ``binary`` (AUROC) or ``regression`` (L1 objective, MAE).
        x_train: float64 ``[N, F]``; y_train: float64 ``[N]``.
        x_val: float64 ``[M, F]``; y_val: float64 ``[M]``.
        categorical: column indices holding integer category codes.
        seed: LightGBM seed.
    """
    metric = "auroc" if kind == "binary" else "mae"
    score = auroc if kind == "binary" else mae
    base = {
        "objective": "binary" if kind == "binary" else "l1",
        "metric": "auc" if kind == "binary" else "l1",
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "min_data_in_leaf": 20,
        "num_threads": THREADS,
        "seed": seed,
        "deterministic": True,
        "verbose": -1,
    }
    train = lgb.Dataset(x_train, y_train, categorical_feature=categorical, free_raw_data=False)
    val = lgb.Dataset(x_val, y_val, reference=train, categorical_feature=categorical)
    best: Fitted | None = None
    for values in itertools.product(*GRID.values()):
        params = base | dict(zip(GRID, values, strict=True))
        booster = lgb.train(
            params,
            train,
            num_boost_round=MAX_TREES,
            valid_sets=[val],
            callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)],
        )
        fitted = Fitted(booster, {}, 0.0)
        value = score(y_val, fitted.predict(x_val))
        chosen = dict(zip(GRID, values, strict=True)) | {"trees": booster.best_iteration}
        better = best is None or (
            value > best.val_metric if HIGHER_IS_BETTER[metric] else value < best.val_metric
        )
        if better:
            best = Fitted(booster, chosen, value)
    if best is None:
        raise RfmError(f"empty LightGBM grid: {GRID}")
    return best
