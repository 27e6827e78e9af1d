"""Monitoring rules as declared per asset in an experiment YAML's `monitoring:` section.

```yaml
monitoring:
  user_source_features:
    - {rule: not_null, column: weight}
    - {rule: drift_psi, column: weight, max_psi: 0.1, severity: WARN}
  recommendations:
    - {rule: user_coverage, min: 0.95}
```

Every rule becomes one asset check named `check_name` (derived from what it asserts unless `name` is given).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)

Severity = Literal["ERROR", "WARN"]
ValueEngine = Literal["numpy", "great_expectations"]
CHECK_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


def quantile_label(q: float) -> str:
    """`p50` for 0.5, `p99_9` for 0.999: a name usable in check names and metadata keys."""
    text = f"{q * 100:.4f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")


def _slug(text: str) -> str:
    """A column name as it may appear inside a check name."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "column"


def _bounds(low: float | None, high: float | None) -> str:
    if low is None:
        return f"at most {high:g}"
    if high is None:
        return f"at least {low:g}"
    return f"within [{low:g}, {high:g}]"


class Rule(BaseModel):
    """What every rule has: a severity and a check name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = "ERROR"
    name: str | None = Field(default=None, pattern=CHECK_NAME_PATTERN, description="Overrides the derived check name.")

    inputs: ClassVar[tuple[str, ...]] = ()

    @property
    def check_name(self) -> str:
        """The asset check's name: stable, named after what the rule asserts."""
        return self.name or self.derived_name()

    def derived_name(self) -> str:
        """The check name when `name` is not given."""
        raise NotImplementedError

    @property
    def assertion(self) -> str:
        """What the rule asserts, in words, for the check's description."""
        raise NotImplementedError

    def thresholds(self) -> dict[str, float | int | list | None]:
        """The rule's limits, for the check's metadata."""
        return {}

    def needed_assets(self) -> set[str]:
        """Other assets whose values evaluating this rule needs (e.g. the subscriptions to exclude)."""
        return {getattr(self, field) for field in self.inputs if getattr(self, field)}


class ColumnRule(Rule):
    """A rule about one column of the asset's table."""

    column: str = Field(min_length=1)


class Bounded(BaseModel):
    """A closed interval; either end may be open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def thresholds(self) -> dict[str, float | int | list | None]:
        """The interval's ends."""
        return {"min": self.min, "max": self.max}


class ValueRule(BaseModel):
    """A rule on values the numpy engine evaluates by default; `engine: great_expectations` opts it into GX."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: ValueEngine = Field(default="numpy", description="great_expectations runs the rule as a GX expectation.")

    @model_serializer(mode="wrap")
    def _without_default_engine(self, handler):
        # The default stays out of dumps: the config hashes recorded with trained models must not move.
        data = handler(self)
        if isinstance(data, dict) and data.get("engine") == "numpy":
            data.pop("engine")
        return data


class NotNull(ColumnRule, ValueRule):
    """No value of the column is null (or at least the share `mostly`)."""

    rule: Literal["not_null"]
    mostly: float = Field(default=1.0, gt=0, le=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_not_null"

    @property
    def assertion(self) -> str:
        return f"{self.column} is never null" if self.mostly == 1 else f"{self.column} is non-null in {self.mostly:.0%} of rows"

    def thresholds(self):
        return {"mostly": self.mostly}


class InRange(Bounded, ColumnRule, ValueRule):
    """Every non-null value of the column lies in a closed range."""

    rule: Literal["in_range"]
    mostly: float = Field(default=1.0, gt=0, le=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_in_range"

    @property
    def assertion(self) -> str:
        return f"every {self.column} is {_bounds(self.min, self.max)}"

    def thresholds(self):
        return {**Bounded.thresholds(self), "mostly": self.mostly}


class InSet(ColumnRule, ValueRule):
    """Every non-null value of the column is one of the allowed values."""

    rule: Literal["in_set"]
    values: list[bool | int | float | str] = Field(min_length=1)
    mostly: float = Field(default=1.0, gt=0, le=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_in_set"

    @property
    def assertion(self) -> str:
        return f"every {self.column} is one of {self.values}"

    def thresholds(self):
        return {"values": list(self.values), "mostly": self.mostly}


class MeanBetween(Bounded, ColumnRule, ValueRule):
    """The column's mean lies in a range."""

    rule: Literal["mean_between"]

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_mean_between"

    @property
    def assertion(self) -> str:
        return f"mean of {self.column} is {_bounds(self.min, self.max)}"


class StdBetween(Bounded, ColumnRule, ValueRule):
    """The column's standard deviation lies in a range."""

    rule: Literal["std_between"]

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_std_between"

    @property
    def assertion(self) -> str:
        return f"standard deviation of {self.column} is {_bounds(self.min, self.max)}"


class QuantileBetween(Bounded, ColumnRule, ValueRule):
    """One quantile of the column lies in a range."""

    rule: Literal["quantile_between"]
    quantile: float = Field(gt=0, lt=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_{quantile_label(self.quantile)}_between"

    @property
    def assertion(self) -> str:
        return f"{quantile_label(self.quantile)} of {self.column} is {_bounds(self.min, self.max)}"

    def thresholds(self):
        return {**Bounded.thresholds(self), "quantile": self.quantile}


class CategoriesPresent(ColumnRule):
    """Each listed category keeps at least a share of the rows: a category that disappears (or nearly) fails."""

    rule: Literal["categories_present"]
    values: list[bool | int | float | str] = Field(min_length=1)
    min_share: float = Field(gt=0, le=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_categories_present"

    @property
    def assertion(self) -> str:
        return f"each of {self.values} makes at least {self.min_share:.1%} of the rows' {self.column}"

    def thresholds(self):
        return {"values": list(self.values), "min_share": self.min_share}


class RowCountChange(Rule):
    """The row count moved by at most a share of the last accepted materialization's."""

    rule: Literal["row_count_change"]
    max_relative_change: float = Field(gt=0)

    def derived_name(self) -> str:
        return "row_count_change_within"

    @property
    def assertion(self) -> str:
        return f"row count is within ±{self.max_relative_change:.0%} of the last accepted materialization's"

    def thresholds(self):
        return {"max_relative_change": self.max_relative_change}


class DriftPsi(ColumnRule):
    """Population stability index of the column against the last accepted materialization."""

    rule: Literal["drift_psi"]
    max_psi: float = Field(gt=0)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_psi_within"

    @property
    def assertion(self) -> str:
        return f"PSI of {self.column} against the last accepted materialization is at most {self.max_psi:g}"

    def thresholds(self):
        return {"max_psi": self.max_psi}


class DriftKs(ColumnRule):
    """Kolmogorov-Smirnov distance of the column from the last accepted materialization."""

    rule: Literal["drift_ks"]
    max_ks: float = Field(gt=0, le=1)

    def derived_name(self) -> str:
        return f"{_slug(self.column)}_ks_within"

    @property
    def assertion(self) -> str:
        return f"KS distance of {self.column} from the last accepted materialization is at most {self.max_ks:g}"

    def thresholds(self):
        return {"max_ks": self.max_ks}


class ListRule(Rule):
    """A rule about per-user lists: one row per user, a list column of recommended items."""

    user_column: str = "user_id"
    items_column: str = "source_ids"


class UserCoverage(ListRule):
    """Share of the users of another asset (by default the feature table) who got a non-empty list."""

    rule: Literal["user_coverage"]
    min: float = Field(ge=0, le=1)
    users_from: str = "user_source_features"
    inputs: ClassVar[tuple[str, ...]] = ("users_from",)

    def derived_name(self) -> str:
        return "user_coverage_at_least"

    @property
    def assertion(self) -> str:
        return f"at least {self.min:.0%} of the users in {self.users_from} get a list"

    def thresholds(self):
        return {"min": self.min}


class ListLength(Bounded, ListRule, ValueRule):
    """Every list's length lies in a range."""

    rule: Literal["list_length"]

    def derived_name(self) -> str:
        return "list_length_between"

    @property
    def assertion(self) -> str:
        return f"every list's length is {_bounds(self.min, self.max)}"


class NoSubscribedItems(ListRule, ValueRule):
    """No list holds an item the user already has in another asset's pairs (by default the subscriptions)."""

    rule: Literal["no_subscribed_items"]
    pairs_from: str = "subscribed_pairs"
    pair_item_column: str = "source_id"
    inputs: ClassVar[tuple[str, ...]] = ("pairs_from",)

    def derived_name(self) -> str:
        return "no_subscribed_items"

    @property
    def assertion(self) -> str:
        return f"no user is recommended an item they have in {self.pairs_from}"

    def thresholds(self):
        return {"max": 0}


class NoDuplicates(ListRule, ValueRule):
    """No list holds the same item twice."""

    rule: Literal["no_duplicates"]

    def derived_name(self) -> str:
        return "no_duplicate_items"

    @property
    def assertion(self) -> str:
        return "no list holds the same item twice"

    def thresholds(self):
        return {"max": 0}


class ScoreDriftPsi(ListRule):
    """PSI of all recommended scores against the last accepted materialization's."""

    rule: Literal["score_drift_psi"]
    max_psi: float = Field(gt=0)
    scores_column: str = "scores"

    def derived_name(self) -> str:
        return "score_psi_within"

    @property
    def assertion(self) -> str:
        return f"PSI of the scores against the last accepted materialization is at most {self.max_psi:g}"

    def thresholds(self):
        return {"max_psi": self.max_psi}


class TopSourcesShare(ListRule):
    """The `top_n` most recommended items take at most a share of all recommended slots."""

    rule: Literal["top_sources_share"]
    top_n: int = Field(ge=1)
    max_share: float = Field(gt=0, le=1)

    def derived_name(self) -> str:
        return f"top_{self.top_n}_sources_share_at_most"

    @property
    def assertion(self) -> str:
        return f"the {self.top_n} most recommended sources take at most {self.max_share:.0%} of all slots"

    def thresholds(self):
        return {"top_n": self.top_n, "max_share": self.max_share}


class Gini(ListRule):
    """Gini coefficient of item exposure, over the catalog of another asset (items never shown count as zero)."""

    rule: Literal["gini"]
    max: float = Field(gt=0, le=1)
    catalog_from: str | None = "user_source_features"
    catalog_column: str = "source_id"
    inputs: ClassVar[tuple[str, ...]] = ("catalog_from",)

    def derived_name(self) -> str:
        return "exposure_gini_at_most"

    @property
    def assertion(self) -> str:
        over = f" over the sources in {self.catalog_from}" if self.catalog_from else ""
        return f"Gini of exposure{over} is at most {self.max:g}"

    def thresholds(self):
        return {"max": self.max}


class Novelty(ListRule):
    """Share of items not in the same users' last published lists; passes when nothing was published yet."""

    rule: Literal["novelty"]
    min: float = Field(ge=0, le=1)

    def derived_name(self) -> str:
        return "novelty_at_least"

    @property
    def assertion(self) -> str:
        return f"at least {self.min:.0%} of the items are new to their user since the last publication"

    def thresholds(self):
        return {"min": self.min}


class DailyRule(Rule):
    """A rule over the registered daily versions of one of the experiment's datasets: each day against the other days.

    `dataset` names the dataset's role in the experiment (e.g. `interactions`); the rule looks at the versions of the
    window the asset was built from, so it guards the first run too, and a bad day blocks every run whose window holds it.
    """

    dataset: str = Field(min_length=1)
    min_days: int = Field(default=4, ge=2, description="Fewer days in the window leave the rule unevaluated.")
    inputs: ClassVar[tuple[str, ...]] = ("dataset",)

    upper: ClassVar[bool] = True

    @property
    def limit(self) -> float:
        """The bound each day's score is held to: a maximum when `upper`, else a minimum."""
        raise NotImplementedError

    def window_columns(self) -> list[str]:
        """The dataset's columns the rule reads."""
        return []


class RelativeChangeRule(DailyRule):
    """A daily measure that must stay within a share of the median of the window's other days."""

    max_relative_change: float = Field(gt=0)

    @property
    def limit(self) -> float:
        return self.max_relative_change

    def thresholds(self):
        return {"max_relative_change": self.max_relative_change}


class DailyRowsChange(RelativeChangeRule):
    """Each day's row count within a share of the median of the window's other days."""

    rule: Literal["daily_rows_change"]

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_daily_rows_within"

    @property
    def assertion(self) -> str:
        return f"every day of {self.dataset} has rows within ±{self.max_relative_change:.0%} of the other days' median"


class DailyDistinctChange(RelativeChangeRule):
    """Each day's count of distinct values of a key column within a share of the other days' median."""

    rule: Literal["daily_distinct_change"]
    column: str = Field(min_length=1)

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_daily_distinct_{_slug(self.column)}_within"

    @property
    def assertion(self) -> str:
        return (f"every day of {self.dataset} has distinct {self.column} within ±{self.max_relative_change:.0%} "
                "of the other days' median")

    def window_columns(self) -> list[str]:
        return [self.column]


class RowsPerEntityChange(RelativeChangeRule):
    """Each day's rows per distinct key (events per user) within a share of the other days' median."""

    rule: Literal["rows_per_entity_change"]
    column: str = Field(min_length=1)

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_rows_per_{_slug(self.column)}_within"

    @property
    def assertion(self) -> str:
        return (f"every day of {self.dataset} has rows per {self.column} within ±{self.max_relative_change:.0%} "
                "of the other days' median")

    def window_columns(self) -> list[str]:
        return [self.column]


class CategoryMixPsi(DailyRule):
    """PSI of each day's category shares of a column against the pooled shares of the other days."""

    rule: Literal["category_mix_psi"]
    column: str = Field(min_length=1)
    max_psi: float = Field(gt=0)

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_{_slug(self.column)}_mix_psi_within"

    @property
    def assertion(self) -> str:
        return f"PSI of every day's {self.column} mix in {self.dataset} against the other days' is at most {self.max_psi:g}"

    @property
    def limit(self) -> float:
        return self.max_psi

    def window_columns(self) -> list[str]:
        return [self.column]

    def thresholds(self):
        return {"max_psi": self.max_psi}


class KeyOverlap(DailyRule):
    """Each day holds at least a share of the regular keys: those present on `min_presence` of the other days."""

    rule: Literal["key_overlap"]
    column: str = Field(min_length=1)
    min: float = Field(gt=0, le=1)
    min_presence: float = Field(default=0.5, gt=0, le=1)

    upper: ClassVar[bool] = False

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_{_slug(self.column)}_overlap_at_least"

    @property
    def assertion(self) -> str:
        return (f"every day of {self.dataset} holds at least {self.min:.0%} of the {self.column} values present on "
                f"{self.min_presence:.0%} of the other days")

    @property
    def limit(self) -> float:
        return self.min

    def window_columns(self) -> list[str]:
        return [self.column]

    def thresholds(self):
        return {"min": self.min, "min_presence": self.min_presence}


class HoursCovered(DailyRule):
    """Each day covers at least a share of its 24 hours with rows stamped in them."""

    rule: Literal["hours_covered"]
    ts_column: str = "ts"
    min: float = Field(gt=0, le=1)
    min_rows_per_hour: int = Field(default=1, ge=1)

    upper: ClassVar[bool] = False

    def derived_name(self) -> str:
        return f"{_slug(self.dataset)}_hours_covered_at_least"

    @property
    def assertion(self) -> str:
        return f"every day of {self.dataset} has rows in at least {self.min:.0%} of its hours ({self.ts_column})"

    @property
    def limit(self) -> float:
        return self.min

    def window_columns(self) -> list[str]:
        return [self.ts_column]

    def thresholds(self):
        return {"min": self.min, "min_rows_per_hour": self.min_rows_per_hour}


AnyRule = Annotated[
    NotNull | InRange | InSet | MeanBetween | StdBetween | QuantileBetween | CategoriesPresent | RowCountChange | DriftPsi
    | DriftKs | UserCoverage | ListLength | NoSubscribedItems | NoDuplicates | ScoreDriftPsi | TopSourcesShare | Gini | Novelty
    | DailyRowsChange | DailyDistinctChange | RowsPerEntityChange | CategoryMixPsi | KeyOverlap | HoursCovered,
    Field(discriminator="rule"),
]


def _unique_check_names(rules: list[Rule]) -> list[Rule]:
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.check_name in seen:
            raise ValueError(
                f"rules {seen[rule.check_name]} and {index} both make the check {rule.check_name!r}; "
                "give one of them a distinct `name`"
            )
        seen[rule.check_name] = index
    return rules


AssetRules = Annotated[list[AnyRule], AfterValidator(_unique_check_names)]
"""The rules of one asset; their check names are unique."""

MonitoringRules = dict[str, AssetRules]
"""The `monitoring:` section of an experiment: asset name -> its rules."""

_ADAPTER: TypeAdapter[MonitoringRules] = TypeAdapter(MonitoringRules)


class RulesError(ValueError):
    """A monitoring section that cannot be used, naming the source, the asset, the rule and the field."""


def parse_monitoring(data: object, source: str = "monitoring") -> dict[str, list[Rule]]:
    """Validate a `monitoring:` mapping, naming `source` and the offending field in any error."""
    try:
        return _ADAPTER.validate_python(data if data is not None else {})
    except ValidationError as error:
        lines = [f"  {'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()]
        raise RulesError(f"{source}: invalid monitoring rules\n" + "\n".join(lines)) from None


def needed_assets(rules: Iterable[Rule]) -> set[str]:
    """Every other asset (or, for daily rules, dataset role) whose value `evaluate` needs in `context_data` for these rules."""
    return set().union(*(rule.needed_assets() for rule in rules))


def daily_datasets(rules: Iterable[Rule]) -> set[str]:
    """The dataset roles the daily rules among these read."""
    return {rule.dataset for rule in rules if isinstance(rule, DailyRule)}


def window_columns(rules: Iterable[Rule], dataset: str) -> list[str]:
    """The columns of `dataset` the daily rules among these read, in rule order."""
    columns = [c for rule in rules if isinstance(rule, DailyRule) and rule.dataset == dataset for c in rule.window_columns()]
    return list(dict.fromkeys(columns))
