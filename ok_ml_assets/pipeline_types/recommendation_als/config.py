"""The sections a `recommendation_als` experiment adds to the shared config."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig, Strict

RANKING_METRICS = ("precision", "recall", "capped_recall", "map", "ndcg", "coverage")
BASELINES = ("popularity", "item_knn")


class Datasets(Strict):
    """The datasets a recommendation experiment consumes."""

    interactions: DatasetWindow
    subscriptions: DatasetWindow


class Features(Strict):
    """How daily events become one implicit-feedback weight per (user, source)."""

    event_weights: dict[Literal["view", "click", "like", "comment"], float]
    half_life_days: float = Field(gt=0)
    min_user_interactions: int = Field(default=1, ge=1)

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(w < 0 for w in value.values()):
            raise ValueError("event weights must be non-empty and non-negative")
        if not any(w > 0 for w in value.values()):
            raise ValueError("at least one event weight must be positive (all zero would make every feature zero)")
        return value


class Model(Strict):
    """Implicit-feedback ALS parameters."""

    factors: int = Field(ge=2, le=1024)
    regularization: float = Field(ge=0)
    iterations: int = Field(ge=1, le=200)
    alpha: float = Field(gt=0)
    seed: int = 0


Tunable = Literal["factors", "regularization", "iterations", "alpha"]
INTEGER_PARAMETERS = ("factors", "iterations")


class SearchRange(Strict):
    """The values a searched parameter may take (an integer for factors and iterations), sampled on a log scale if asked."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range must start above 0")
        return self


class Search(Strict):
    """Choose the model's parameters by a small budget of trials (Optuna's TPE), each scored on a validation split that
    ends where the holdout begins, so the holdout still measures the chosen model fairly."""

    trials: int = Field(ge=1, le=200)
    seed: int = 0
    space: dict[Tunable, SearchRange] = Field(min_length=1)


class Evaluation(Strict):
    """Time-based holdout: the last days of the window are hidden from the evaluated model."""

    holdout_days: int = Field(ge=1, description="Calendar days at the end of the window held out, whether or not each has a version.")
    k: int = Field(ge=1)
    online_days: int = Field(default=7, ge=1, description="Days after a publication its online metrics look at.")


Excluded = Literal["subscriptions", "interacted"]


class Exclusions(Strict):
    """What a user is never recommended, in production and in evaluation: the sources they follow (`subscriptions`)
    and those they engaged with in the window (`interacted`). Drop `interacted` when repeat consumption is wanted."""

    serving: list[Excluded] = ["subscriptions", "interacted"]
    evaluation: list[Excluded] = Field(
        default=["subscriptions", "interacted"],
        description="Computed from the days before the holdout only: a follow or an engagement inside the holdout is "
                    "what the model should find, never a reason to drop a relevant source.",
    )


class Recommendations(Strict):
    """Per-user top-K lists."""

    top_k: int = Field(ge=1, le=1000)


class SparkOptions(Strict):
    """How the Spark engine runs this experiment (read only with `engine: spark`)."""

    als: Literal["mllib", "implicit"] = Field(
        default="mllib", description="mllib: Spark MLlib's implicit-preference ALS on the cluster; implicit: the local `implicit` "
                                     "library on the features collected to the driver (same model as the local engine).")
    users_per_task: int = Field(default=50_000, ge=1_000, description="Users scored per top-K task.")


class Synthetic(Strict):
    """The synthetic world `make run` registers for this experiment's datasets when they have no version yet."""

    seed: int | None = Field(default=None, description="World seed; unset uses `ok-ml run --seed`.")


class RecommendationAlsConfig(ExperimentConfig):
    """A recommendation experiment: windowed implicit feedback, ALS, top-K unsubscribed sources per user."""

    pipeline_type: Literal["recommendation_als"]
    datasets: Datasets
    features: Features
    model: Model
    evaluation: Evaluation
    recommendations: Recommendations
    exclusions: Exclusions = Exclusions()
    search: Search | None = None
    synthetic: Synthetic = Synthetic()
    spark: SparkOptions = SparkOptions()

    monitored_assets: ClassVar[tuple[str, ...]] = ("user_source_features", "recommendations")
    engines: ClassVar[tuple[str, ...]] = ("local", "spark")

    def recorded_metrics(self) -> set[str]:
        """Holdout ranking metrics at the evaluation's k, each baseline's, and how many users they rest on."""
        ranking = {f"{name}_at_{self.evaluation.k}" for name in RANKING_METRICS}
        return ranking | {f"{baseline}_{metric}" for baseline in BASELINES for metric in ranking} | {"evaluated_users"}

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> RecommendationAlsConfig:
        if self.datasets.interactions.window_days is None:
            raise ValueError("datasets.interactions.window_days is required: features are computed over a window")
        if self.evaluation.holdout_days >= self.datasets.interactions.window_days:
            raise ValueError(
                f"evaluation.holdout_days ({self.evaluation.holdout_days}) must be shorter than "
                f"datasets.interactions.window_days ({self.datasets.interactions.window_days})"
            )
        if self.search is not None and 2 * self.evaluation.holdout_days >= self.datasets.interactions.window_days:
            raise ValueError(
                f"search needs a validation split before the holdout: 2 x evaluation.holdout_days "
                f"({2 * self.evaluation.holdout_days}) must be shorter than datasets.interactions.window_days "
                f"({self.datasets.interactions.window_days})"
            )
        if self.evaluation.k > self.recommendations.top_k:
            raise ValueError("evaluation.k must not exceed recommendations.top_k")
        return self
