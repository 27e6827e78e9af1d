"""Assembly only: load the experiment configs, build each experiment, bind the resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ok_ml_assets.configs import load_experiment_configs, require_cataloged_datasets, with_engine
from ok_ml_assets.engines import spark_resource_for
from ok_ml_assets.lifecycle.annotations import annotate
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.registry.catalog import load_catalog
from ok_ml_assets.resources.io import LocalParquetIOManager
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.resources.mlflow import MlflowResource
from ok_ml_assets.resources.monitoring import MonitoringResource
from ok_ml_assets.resources.registry import RegistryResource
from ok_ml_assets.sensors import build_registry_sensor, build_serving_sensor
from ok_ml_assets.settings import Settings, load_settings


def build_resources(settings: Settings, engines: set[str] = frozenset()) -> dict[str, object]:
    """Every resource bound to the systems the settings name (a Spark session only if one of `engines` is spark)."""
    mlflow = MlflowResource(
        tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root,
        ui_url=settings.mlflow_ui_url, dagster_ui_url=settings.dagster_ui_url,
    )
    return {
        "io_manager": LocalParquetIOManager(base_dir=str(settings.assets_dir), mlflow=mlflow),
        "registry": RegistryResource(
            repo_dir=str(settings.registry_repo), remote=settings.dvc_remote, catalog_path=str(settings.catalog_path)
        ),
        "mlflow": mlflow,
        "kafka": KafkaResource(bootstrap_servers=settings.kafka_bootstrap_servers, security=settings.kafka_security),
        "monitoring": MonitoringResource(reference_dir=str(settings.monitoring_dir)),
        "spark": spark_resource_for(engines, settings),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All experiments in the configs folder, merged, with the registry sensor and resources bound."""
    settings = settings or load_settings()
    configs = with_engine(load_experiment_configs(settings.configs_dir), settings.engine)
    catalog = load_catalog(settings.catalog_path)
    require_cataloged_datasets(configs, set(catalog.datasets), settings.catalog_path)
    experiments = [annotate(pipeline_type(config.pipeline_type).build(config), config, catalog) for config in configs]
    jobs = [job for experiment in experiments for job in experiment.jobs or []]
    sensors = dg.Definitions(sensors=[build_registry_sensor(configs, jobs), build_serving_sensor(configs)])
    # In-process runs: no per-step process start (about 20 s a run here), and no step subprocess whose __main__
    # lacks a file, where importing Great Expectations pulls in pyspark's connect utils (if pyspark is installed),
    # which call sys.exit(0).
    engines = {config.engine for config in configs}
    shared = dg.Definitions(resources=build_resources(settings, engines), executor=dg.in_process_executor)
    return dg.Definitions.merge(*experiments, sensors, shared)


def source_stamp(settings: Settings) -> tuple:
    """What the definitions are built from: the settings, and the name, size and modification time of every config and the catalog."""
    files = [*sorted(settings.configs_dir.glob("*.yml")), settings.catalog_path]
    return repr(settings), tuple((str(path), *file_stamp(path)) for path in files)


def file_stamp(path: Path) -> tuple[int, int]:
    """A file's modification time and size (zeros if it is missing: building then names the problem)."""
    try:
        stat = path.stat()
    except OSError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


# The last definitions built by `defs`, by their source stamp: Dagster's loaders (`dagster asset list`, the code server)
# call a @definitions function twice in one process, and each build of a hundred experiments takes seconds.
_LAST_BUILT: dict[tuple, dg.Definitions] = {}


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads (lazily, so importing this module touches nothing)."""
    settings = load_settings()
    stamp = source_stamp(settings)
    if stamp not in _LAST_BUILT:
        built = build_definitions(settings)
        _LAST_BUILT.clear()
        _LAST_BUILT[stamp] = built
    return _LAST_BUILT[stamp]
