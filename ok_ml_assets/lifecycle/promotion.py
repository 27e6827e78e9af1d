"""The promotion gate: may a challenger model become the champion?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

REQUIRED_LINEAGE_TAGS = (
    "git_commit", "git_dirty", "config_hash", "datasets", "dagster_run_id", "dagster_asset_key", "trained_by",
)
TRAINED_BY = "ok_ml_assets"


@dataclass(frozen=True)
class PromotionPolicy:
    """Thresholds from the experiment YAML."""

    min_metrics: Mapping[str, float]
    max_regression: float
    min_lift_over_baseline: float
    primary_metric: str
    require_clean_tree: bool = True
    min_evaluated: Mapping[str, int] = field(default_factory=dict)
    baseline: str = "best"


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with its reason."""

    promote: bool
    reason: str


def lineage_problems(tags: Mapping[str, str], require_clean_tree: bool) -> list[str]:
    """What makes a version's lineage incomplete or untrustworthy."""
    problems = [f"lineage tag {name!r} is missing" for name in REQUIRED_LINEAGE_TAGS if not tags.get(name)]
    if tags.get("trained_by") and tags["trained_by"] != TRAINED_BY:
        problems.append(f"trained_by is {tags['trained_by']!r}, not the pipeline")
    if tags.get("git_commit") == "unknown":
        problems.append("the git commit is unknown")
    if require_clean_tree and tags.get("git_dirty") != "false":
        problems.append("the source tree was dirty (uncommitted changes) when it was trained")
    return problems


def sample_problems(metrics: Mapping[str, float], min_evaluated: Mapping[str, int]) -> list[str]:
    """Which sample sizes are below the YAML's minimum, in words (a metric on 83 users decides nothing)."""
    problems = []
    for name, minimum in min_evaluated.items():
        if name not in metrics:
            problems.append(f"{name} was not recorded")
        elif metrics[name] < minimum:
            problems.append(f"the metrics rest on {metrics[name]:.0f} {name.replace('_', ' ')}, fewer than the {minimum} "
                            "promotion.min_evaluated requires")
    return problems


def baseline_metric(policy: PromotionPolicy) -> str:
    """The recorded metric a first model is compared with: the best baseline's, or the named one's."""
    prefix = "baseline" if policy.baseline == "best" else policy.baseline
    return f"{prefix}_{policy.primary_metric}"


def baseline_words(policy: PromotionPolicy) -> str:
    """The compared baseline, in words."""
    return "the best baseline" if policy.baseline == "best" else f"the {policy.baseline} baseline"


def decide_promotion(
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    policy: PromotionPolicy,
) -> Decision:
    """Promote only a fully traced model, evaluated on enough data, that passes the absolute bars and beats the champion
    or the baseline."""
    problems = lineage_problems(tags, policy.require_clean_tree)
    too_few = sample_problems(metrics, policy.min_evaluated)
    if too_few:
        # Metrics on too small a sample compare nothing: say that, not how they compare.
        return Decision(False, "; ".join([*problems, "no decision on too small a sample: " + "; ".join(too_few)]))
    for name, minimum in policy.min_metrics.items():
        if name not in metrics:
            problems.append(f"metric {name} was not recorded")
        elif metrics[name] < minimum:
            problems.append(f"{name} {metrics[name]:.4f} is below the minimum {minimum}")
    primary = metrics.get(policy.primary_metric)
    if primary is None:
        problems.append(f"primary metric {policy.primary_metric} was not recorded")
    elif champion_metrics is not None:
        floor = champion_metrics.get(policy.primary_metric, 0.0) * (1 - policy.max_regression)
        if primary < floor:
            problems.append(
                f"{policy.primary_metric} {primary:.4f} regresses more than {policy.max_regression:.0%} "
                f"against the champion's {champion_metrics.get(policy.primary_metric, 0.0):.4f}"
            )
    else:
        baseline = metrics.get(baseline_metric(policy), 0.0)
        if primary < baseline * (1 + policy.min_lift_over_baseline):
            problems.append(
                f"first model: {policy.primary_metric} {primary:.4f} does not beat {baseline_words(policy)} "
                f"{baseline:.4f} by {policy.min_lift_over_baseline:.0%}"
            )
    if problems:
        return Decision(False, "; ".join(problems))
    against = "the champion" if champion_metrics is not None else baseline_words(policy)
    return Decision(True, f"lineage complete, thresholds met, {policy.primary_metric} {primary:.4f} holds against {against}")
