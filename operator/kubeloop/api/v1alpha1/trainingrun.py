"""TrainingRun: one training of one model on one dataset version."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from kubeloop.api.v1alpha1.cel import CelRule, list_map, list_set, min_properties, validations
from kubeloop.api.v1alpha1.common import (
    REGRESSION_METRICS,
    ColumnName,
    ColumnSpec,
    CustomResource,
    KubeModel,
    MetricName,
    ModelArtifact,
    ModelName,
    PositiveDuration,
    ResourceRequirements,
    Sha256,
    StatusBase,
    StorageUri,
)

# --- rules -------------------------------------------------------------------------------------

TARGET_NOT_A_FEATURE = CelRule(
    rule="!has(self.features) || !(self.target in self.features)",
    message="dataset.target must not also be listed in dataset.features",
)
RANGE_ORDERED = CelRule(
    rule="!has(self.min) || !has(self.max) || self.min <= self.max",
    message="range min must be less than or equal to max",
)
DISTRIBUTION_BOUNDS = CelRule(
    rule="has(self.distribution) == has(self.low) && has(self.distribution) == has(self.high)",
    message="low and high are required with distribution and not allowed without it",
)
DISTRIBUTION_LOW_BELOW_HIGH = CelRule(
    rule="!has(self.distribution) || !has(self.low) || !has(self.high) || self.low < self.high",
    message="distribution low must be less than high",
)
LOGUNIFORM_POSITIVE = CelRule(
    rule="!has(self.distribution) || self.distribution != 'loguniform' || !has(self.low) || self.low > 0.0",
    message="loguniform distribution needs low > 0",
)
PARALLELISM_WITHIN_TRIALS = CelRule(
    rule="self.parallelism <= self.trials",
    message="search.parallelism must be less than or equal to search.trials",
)
GRID_NEEDS_VALUES = CelRule(
    rule="self.strategy != 'grid' || self.space.all(p, !has(self.space[p].distribution))",
    message="grid search needs explicit values for every parameter in space; "
    "distributions need strategy random",
)
REGRESSOR_CEL = (
    "(self.estimator.endsWith('Regressor') || self.estimator in ['LinearRegression', 'Ridge', 'SVR'])"
)
_REGRESSION_METRICS_CEL = "[" + ", ".join(f"'{m.value}'" for m in REGRESSION_METRICS) + "]"
SEARCH_METRIC_MATCHES_ESTIMATOR = CelRule(
    rule=(
        "!has(self.search) || !has(self.search.metric) || "
        f"{REGRESSOR_CEL} == (self.search.metric in {_REGRESSION_METRICS_CEL})"
    ),
    message=(
        "search.metric must suit the estimator: r2, mae, mse or rmse for regressors; accuracy, "
        "balanced_accuracy, precision, recall, f1, roc_auc or log_loss for classifiers"
    ),
)
NAME_FITS_JOB_NAMES = CelRule(
    rule="size(self.metadata.name) <= 56",
    message="TrainingRun names are limited to 56 characters so that the Job names "
    "<name>-search and <name>-train fit in 63",
    field_path=".metadata.name",
)


# --- dataset -----------------------------------------------------------------------------------


class ValueRange(KubeModel):
    """Inclusive bounds for a numeric column."""

    model_config = ConfigDict(json_schema_extra={**validations(RANGE_ORDERED), **min_properties(1)})

    min: float | None = Field(default=None, description="Smallest allowed value (inclusive).")
    max: float | None = Field(default=None, description="Largest allowed value (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        RANGE_ORDERED.require(self.min is None or self.max is None or self.min <= self.max)
        return self


class LabelBalance(KubeModel):
    """Guard against a degenerate target column."""

    min_class_fraction: float = Field(
        gt=0,
        le=0.5,
        description="Every class of the target must make up at least this fraction of rows "
        "(classifiers only).",
    )


class DataValidation(KubeModel):
    """Checks run on the dataset before any training; a failure sets DataValid=False and fails the run."""

    required_columns: list[ColumnSpec] = Field(
        default_factory=list,
        max_length=1000,
        description="Columns that must exist, with their logical types.",
        json_schema_extra=list_map("name"),
    )
    max_missing_fraction: float | None = Field(
        default=None, ge=0, le=1, description="Largest allowed fraction of missing values in any used column."
    )
    ranges: dict[str, ValueRange] = Field(
        default_factory=dict, max_length=1000, description="Allowed value range per numeric column."
    )
    allowed_categories: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=1000,
        description="Allowed values per categorical column; any other value fails validation.",
    )
    min_rows: int | None = Field(default=None, ge=1, description="Fewest rows the dataset may have.")
    label_balance: LabelBalance | None = Field(
        default=None, description="Class balance required of the target."
    )


class DatasetSpec(KubeModel):
    """One version of a tabular dataset."""

    model_config = ConfigDict(json_schema_extra=validations(TARGET_NOT_A_FEATURE))

    uri: StorageUri = Field(description="Dataset file: s3://bucket/key (or file:///path in tests).")
    format: Literal["csv", "parquet"] = Field(
        default="csv", description="File format: csv (with header) or parquet."
    )
    target: ColumnName = Field(description="Column the model learns to predict.")
    features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Input columns. Omitted: every column except the target.",
        json_schema_extra=list_set(),
    )
    validation: DataValidation | None = Field(default=None, description="Data checks run before training.")

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> DatasetSpec:
        TARGET_NOT_A_FEATURE.require(self.features is None or self.target not in self.features)
        return self


# --- algorithm ---------------------------------------------------------------------------------


class Estimator(StrEnum):
    """scikit-learn estimators the trainer knows how to fit and export to ONNX."""

    LOGISTIC_REGRESSION = "LogisticRegression"
    LINEAR_REGRESSION = "LinearRegression"
    RIDGE = "Ridge"
    RANDOM_FOREST_CLASSIFIER = "RandomForestClassifier"
    RANDOM_FOREST_REGRESSOR = "RandomForestRegressor"
    GRADIENT_BOOSTING_CLASSIFIER = "GradientBoostingClassifier"
    GRADIENT_BOOSTING_REGRESSOR = "GradientBoostingRegressor"
    HIST_GRADIENT_BOOSTING_CLASSIFIER = "HistGradientBoostingClassifier"
    HIST_GRADIENT_BOOSTING_REGRESSOR = "HistGradientBoostingRegressor"
    K_NEIGHBORS_CLASSIFIER = "KNeighborsClassifier"
    K_NEIGHBORS_REGRESSOR = "KNeighborsRegressor"
    SVC = "SVC"
    SVR = "SVR"

    @property
    def is_regressor(self) -> bool:
        return self.value.endswith("Regressor") or self in (
            Estimator.LINEAR_REGRESSION,
            Estimator.RIDGE,
            Estimator.SVR,
        )


class SearchStrategy(StrEnum):
    """How hyperparameter configurations are chosen."""

    GRID = "grid"
    RANDOM = "random"


class Distribution(StrEnum):
    """Random-search distribution of one parameter."""

    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    RANDINT = "randint"


class SearchDimension(KubeModel):
    """Candidate values of one hyperparameter: a list of values, or a distribution (random search)."""

    model_config = ConfigDict(
        json_schema_extra={
            **validations(DISTRIBUTION_BOUNDS, DISTRIBUTION_LOW_BELOW_HIGH, LOGUNIFORM_POSITIVE),
            **min_properties(1),
        }
    )

    values: list[Any] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Explicit candidate values (numbers, strings, booleans or null).",
    )
    distribution: Distribution | None = Field(
        default=None,
        description="Sample from uniform, loguniform or randint between low and high (random only).",
    )
    low: float | None = Field(default=None, description="Lower bound of the distribution.")
    high: float | None = Field(
        default=None, description="Upper bound of the distribution (exclusive for randint)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SearchDimension:
        if (self.values is None) == (self.distribution is None):
            raise ValueError("set exactly one of values or distribution")
        has_distribution = self.distribution is not None
        DISTRIBUTION_BOUNDS.require(has_distribution == (self.low is not None) == (self.high is not None))
        if self.low is not None and self.high is not None:
            DISTRIBUTION_LOW_BELOW_HIGH.require(self.low < self.high)
            LOGUNIFORM_POSITIVE.require(self.distribution != Distribution.LOGUNIFORM or self.low > 0)
        return self


class SearchSpec(KubeModel):
    """Hyperparameter search: an Indexed Job runs one trial per index, then the best params are refit."""

    model_config = ConfigDict(json_schema_extra=validations(PARALLELISM_WITHIN_TRIALS, GRID_NEEDS_VALUES))

    strategy: SearchStrategy = Field(default=SearchStrategy.RANDOM, description="grid or random.")
    space: dict[str, SearchDimension] = Field(
        min_length=1, max_length=50, description="Candidate values per estimator parameter name."
    )
    trials: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Trials to run. Random search samples this many configurations; grid search evaluates "
        "at most this many grid points.",
    )
    parallelism: int = Field(default=1, ge=1, le=100, description="Trials running at the same time (pods).")
    metric: MetricName | None = Field(
        default=None,
        description="Metric the best trial maximizes (or minimizes, for losses). Default: accuracy for "
        "classifiers, r2 for regressors.",
    )
    cv_folds: int = Field(default=5, ge=2, le=20, description="Cross-validation folds per trial.")

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpec:
        PARALLELISM_WITHIN_TRIALS.require(self.parallelism <= self.trials)
        GRID_NEEDS_VALUES.require(
            self.strategy != SearchStrategy.GRID or all(d.distribution is None for d in self.space.values())
        )
        return self


class AlgorithmSpec(KubeModel):
    """What to fit."""

    model_config = ConfigDict(json_schema_extra=validations(SEARCH_METRIC_MATCHES_ESTIMATOR))

    estimator: Estimator = Field(description="scikit-learn estimator class, from the supported list.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Fixed constructor parameters of the estimator, e.g. {max_depth: 8}.",
    )
    search: SearchSpec | None = Field(
        default=None, description="Hyperparameter search; omitted: one Job fits params as given."
    )

    @model_validator(mode="after")
    def _metric_matches_estimator(self) -> AlgorithmSpec:
        if self.search is not None and self.search.metric is not None:
            SEARCH_METRIC_MATCHES_ESTIMATOR.require(
                self.estimator.is_regressor == self.search.metric.for_regression
            )
        return self


class SplitSpec(KubeModel):
    """Hold-out split used for the final evaluation."""

    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Fraction of rows held out for testing."
    )
    seed: int = Field(default=42, ge=0, description="Random seed of the split and of the estimator.")
    stratify: bool = Field(
        default=True, description="Keep class proportions in both parts (ignored for regressors)."
    )


# --- spec and status ---------------------------------------------------------------------------


def _training_resources() -> ResourceRequirements:
    return ResourceRequirements(requests={"cpu": "1", "memory": "2Gi"}, limits={"memory": "4Gi"})


class TrainingRunSpec(KubeModel):
    """Desired training. Never written by the operator."""

    model: ModelName
    dataset: DatasetSpec = Field(description="Dataset version to train on, and the checks it must pass.")
    algorithm: AlgorithmSpec = Field(
        description="Estimator, fixed parameters and optional hyperparameter search."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="Train/test split of the dataset.")
    metrics: list[MetricName] = Field(
        default_factory=list,
        max_length=20,
        description="Metrics computed on the test split. Empty: the standard set for the task.",
        json_schema_extra=list_set(),
    )
    resources: ResourceRequirements = Field(
        default_factory=_training_resources, description="Compute resources of each training pod."
    )
    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Trainer image override (bring your own trainer that honours the artifact contract).",
    )
    command: list[str] | None = Field(
        default=None, max_length=64, description="Command override for the trainer container."
    )
    deadline: PositiveDuration = Field(
        default="6h", description="Wall-clock limit for the whole run; past it the run fails."
    )
    # `register` is taken on pydantic models (ABCMeta.register), hence the Python name.
    register_version: bool = Field(
        default=True, alias="register", description="Create a ModelVersion from the trained model."
    )
    retain_artifacts: bool = Field(
        default=True, description="Keep the run's artifacts in the store when the TrainingRun is deleted."
    )


class TrainingPhase(StrEnum):
    """Where the run is."""

    PENDING = "Pending"
    VALIDATING = "Validating"
    SEARCHING = "Searching"
    TRAINING = "Training"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class BestTrial(KubeModel):
    """The winning trial of a search."""

    index: int = Field(ge=0, description="Completion index of the trial in the search Job.")
    score: float = Field(description="Cross-validated score of the search metric.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the trial.")


class TrialsStatus(KubeModel):
    """Progress of the hyperparameter search."""

    completed: int = Field(default=0, ge=0, description="Trials finished so far.")
    total: int = Field(default=0, ge=0, description="Trials the search will run.")
    best: BestTrial | None = Field(default=None, description="Best trial so far.")


class DatasetStatus(KubeModel):
    """Fingerprint of the dataset actually read."""

    sha256: Sha256 | None = Field(default=None, description="SHA-256 of the dataset file.")
    rows: int | None = Field(default=None, ge=0, description="Number of rows.")
    columns: int | None = Field(default=None, ge=0, description="Number of columns.")


class ViolationStatus(KubeModel):
    """A dataset validation rule the data broke."""

    rule: str = Field(max_length=64, description="The rule, e.g. maxMissingFraction or allowedCategories.")
    column: str | None = Field(default=None, max_length=256, description="The column, when the rule has one.")
    count: int = Field(default=0, ge=0, description="How many values broke it.")
    message: str = Field(default="", max_length=1024, description="What was expected and what was found.")


class TrainingRunStatus(StatusBase):
    """Observed state of the run. Condition types: DataValid, Succeeded."""

    phase: TrainingPhase | None = Field(
        default=None, description="Pending, Validating, Searching, Training, Succeeded or Failed."
    )
    trials: TrialsStatus | None = Field(
        default=None, description="Search progress (runs with a search only)."
    )
    dataset: DatasetStatus | None = Field(default=None, description="Fingerprint of the dataset used.")
    violations: list[ViolationStatus] = Field(
        default_factory=list,
        max_length=50,
        description="Validation rules the dataset broke (DataValid=False).",
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Test-split metrics of the final model."
    )
    artifact: ModelArtifact | None = Field(
        default=None, description="The trained model in the artifact store."
    )
    model_version: str | None = Field(
        default=None, max_length=253, description="Name of the ModelVersion registered from this run."
    )
    start_time: datetime | None = Field(default=None, description="When the first Job started.")
    completion_time: datetime | None = Field(default=None, description="When the run succeeded or failed.")


class TrainingRun(CustomResource):
    """Trains one model on one dataset version, exports it to ONNX and registers a ModelVersion."""

    kind: Literal["TrainingRun"] = "TrainingRun"
    spec: TrainingRunSpec
    status: TrainingRunStatus | None = None

    @model_validator(mode="after")
    def _name_fits_job_names(self) -> TrainingRun:
        NAME_FITS_JOB_NAMES.require(self.metadata.name is None or len(self.metadata.name) <= 56)
        return self


RESOURCE_RULES = (NAME_FITS_JOB_NAMES,)
CONDITION_DATA_VALID = "DataValid"
CONDITION_SUCCEEDED = "Succeeded"
