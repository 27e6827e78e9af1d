"""Hyperparameter search: a small budget of Optuna trials over the model section (Optuna imported only when searching)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ok_ml_assets.pipeline_types.recommendation_als.config import INTEGER_PARAMETERS, Model, Search, SearchRange


@dataclass(frozen=True)
class Trial:
    """One tried set of parameters and the validation metrics it reached."""

    number: int
    params: dict[str, float | int]
    metrics: dict[str, float]


@dataclass(frozen=True)
class ChosenModel:
    """The model parameters a training uses: the YAML's, or the best trial's with every trial."""

    model: Model
    trials: tuple[Trial, ...] = field(default=())
    objective: str = ""

    def metrics(self) -> dict[str, float]:
        """What the search adds to a training's metrics: the budget and the best validation score."""
        if not self.trials:
            return {}
        return {"search_trials": float(len(self.trials)),
                f"search_best_validation_{self.objective}": max(t.metrics[self.objective] for t in self.trials)}

    def params(self) -> dict[str, float | int]:
        """The chosen values of the searched parameters (empty without a search)."""
        return {name: getattr(self.model, name) for name in self.trials[0].params} if self.trials else {}


def suggest(trial, name: str, value_range: SearchRange) -> float | int:
    """A value for one parameter from Optuna's sampler, an integer where the model needs one."""
    if name in INTEGER_PARAMETERS:
        return trial.suggest_int(name, int(value_range.low), int(value_range.high), log=value_range.log)
    return trial.suggest_float(name, value_range.low, value_range.high, log=value_range.log)


def search(model: Model, settings: Search, objective: str, score: Callable[[Model], dict[str, float]]) -> ChosenModel:
    """Run `settings.trials` trials (TPE, seeded) maximising `objective` of `score(candidate)`; the best one wins."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials: list[Trial] = []

    def run_trial(trial) -> float:
        params = {name: suggest(trial, name, value_range) for name, value_range in settings.space.items()}
        metrics = score(model.model_copy(update=params))
        trials.append(Trial(trial.number, params, metrics))
        return metrics[objective]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed))
    study.optimize(run_trial, n_trials=settings.trials)
    return ChosenModel(model.model_copy(update=study.best_params), tuple(trials), objective)
