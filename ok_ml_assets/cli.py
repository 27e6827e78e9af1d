"""`ok-ml`: register datasets, run experiments and inspect what was published."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from confluent_kafka import KafkaException

from ok_ml_assets.configs import ConfigError, load_experiment_config, load_experiment_configs
from ok_ml_assets.registry import DataRegistry, RegistryError, registry_client
from ok_ml_assets.registry.catalog import CatalogError
from ok_ml_assets.settings import load_settings


def fail(message: str) -> NoReturn:
    """Print a user-facing error and exit non-zero, without a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def quiet_libraries() -> None:
    """Keep MLflow's info chatter and progress bars out of the run report; everything stays in MLflow and Dagster."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")


@click.group()
def main() -> None:
    """ok-ml: registered data to validated predictions in Kafka."""


@main.command()
@click.option("--preset", default="default", show_default=True, help="Synthetic world size: tiny, default or large.")
@click.option("--seed", default=7, show_default=True, help="Synthetic world seed.")
@click.option("--experiment", "experiments", multiple=True, help="Experiment(s) to run; all by default.")
@click.option("--engine", type=click.Choice(["local", "spark"]), default=None,
              help="Run every experiment whose type implements it on this engine, whatever its YAML says (OK_ML_ENGINE).")
def run(preset: str, seed: int, experiments: tuple[str, ...], engine: str | None) -> None:
    """Register the synthetic world if the registry is empty, then materialize experiments end to end."""
    from ok_ml_assets.orchestration import run_experiments
    from ok_ml_assets.preflight import StorageUnusable, require_usable_storage
    from ok_ml_assets.progress import Progress, output_to_log

    quiet_libraries()
    if engine:
        os.environ["OK_ML_ENGINE"] = engine
    settings = load_settings()
    try:
        # Before anything writes, the log included: a full disk is one line, not a traceback.
        require_usable_storage(settings)
    except StorageUnusable as error:
        fail(str(error))
    log = settings.home / "logs" / "ok-ml.log"
    click.echo(f"third-party output (DVC, MLflow, Kafka client, Dagster warnings) goes to {log}")
    try:
        with output_to_log(log) as terminal:
            summaries = run_experiments(settings, preset=preset, seed=seed, experiments=list(experiments), progress=Progress(terminal))
    except (ConfigError, RegistryError, ValueError) as error:
        fail(f"{error}\n(details in {log})")
    failed = [name for name, summary in summaries.items() if not summary.success]
    click.echo(f"\nthird-party output of this run: {log}")
    if failed:
        fail(f"experiments failed: {', '.join(failed)} (see the Dagster UI: make dev)")


@main.group()
def registry() -> None:
    """The data registry: versioned datasets with contracts."""


def open_registry() -> DataRegistry:
    """The configured registry, or a user-facing error when its catalog cannot be used."""
    try:
        return registry_client(load_settings())
    except CatalogError as error:
        fail(str(error))


@registry.command("add")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--tag", help="Version tag of a single file; daily datasets use the ISO date, e.g. 2026-11-01.")
@click.option("--tag-column", help="Tag each file with the one day its values of this column fall on.")
@click.option("--source", default="", help="Where the data came from (recorded with each version).")
@click.option("--force", is_flag=True, help="Register bytes that another tag of NAME already holds (or held, deprecated).")
def registry_add(name: str, paths: tuple[str, ...], tag: str | None, tag_column: str | None, source: str, force: bool) -> None:
    """Validate each file against NAME's contract and register it, all in one commit (all or nothing).

    PATHS are files, folders (every .parquet inside) or globs. Without --tag, a daily version's tag is the first
    YYYY-MM-DD in its file name, or the day of --tag-column.
    """
    from ok_ml_assets.registry.bulk import expand_paths, plan_files

    client = open_registry()
    try:
        plans = plan_files(name, expand_paths(list(paths)), client.catalog.contract(name), tag, tag_column, source)
        known = {v.ref for v in client.versions(name)}
        versions = client.add_many(plans, force=force)
    except KeyError as error:
        fail(str(error.args[0]))
    except RegistryError as error:
        fail(str(error))
    report_registered(versions, known)


def report_registered(versions: list, known: set[str]) -> None:
    """One line per version, and a total when there are several."""
    for version in versions:
        note = " (already registered, unchanged)" if version.ref in known else ""
        click.echo(f"registered {version.ref}: {version.rows} rows, md5 {version.md5}{note}")
    if len(versions) > 1:
        new = sum(v.ref not in known for v in versions)
        click.echo(f"{new} new versions of {versions[0].name} ({versions[0].tag} .. {versions[-1].tag}) in one commit")


@registry.command("import-events")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--timestamp-column", required=True, help="The column whose day decides each event's daily version.")
@click.option("--source", default="", help="Where the log came from (recorded with each version).")
def registry_import_events(name: str, file: Path, timestamp_column: str, source: str) -> None:
    """Split a raw event log (parquet or CSV) into daily versions of NAME and register them in one commit.

    Timestamps without a zone or offset are read as UTC; days without events become empty versions when the catalog
    declares `allow_empty` for NAME.
    """
    from ok_ml_assets.registry.bulk import daily_registrations, read_events, split_by_day

    client = open_registry()
    try:
        contract = client.catalog.contract(name)
        tables = split_by_day(read_events(file, contract), timestamp_column, contract)
        known = {v.ref for v in client.versions(name)}
        with daily_registrations(name, tables, source or str(file)) as plans:
            versions = client.add_many(plans)
    except KeyError as error:
        fail(str(error.args[0]))
    except RegistryError as error:
        fail(str(error))
    empty = sum(len(t) == 0 for t in tables.values())
    click.echo(f"split {sum(len(t) for t in tables.values())} events of {file} into {len(tables)} days ({empty} empty)")
    report_registered(versions, known)


@registry.command("list")
def registry_list() -> None:
    """Every dataset in the catalog with its number of versions and latest tag."""
    client = open_registry()
    for name, contract in sorted(client.catalog.datasets.items()):
        versions = client.versions(name)
        latest = max((v.tag for v in versions), default="-")
        deprecated = len(client.deprecations(name))
        taken_back = f"  ({deprecated} deprecated)" if deprecated else ""
        click.echo(f"{name:24} {len(versions):5} versions  latest {latest:12} owner {contract.owner}{taken_back}")


@registry.command("show")
@click.argument("name")
def registry_show(name: str) -> None:
    """A dataset's contract and its registered versions."""
    client = open_registry()
    try:
        contract = client.catalog.contract(name)
    except KeyError as error:
        fail(str(error.args[0]))
    click.echo(f"{name}: {contract.description}\nowner: {contract.owner}  partitioning: {contract.partitioning}  "
               f"retention: {contract.retention_days} days  primary key: {contract.primary_key}")
    for column, rule in contract.columns.items():
        click.echo(f"  {column}: {rule.model_dump(exclude_none=True)}")
    for version in sorted(client.versions(name), key=lambda v: v.tag):
        click.echo(f"  {version.tag:12} {version.rows:>10} rows  md5 {version.md5}  {version.created_at}  {version.source}")
    for taken_back in client.deprecations(name):
        version = taken_back.version
        click.echo(f"  {version.tag:12} {version.rows:>10} rows  md5 {version.md5}  DEPRECATED {taken_back.deprecated_at}: "
                   f"{taken_back.reason} (registered in commit {taken_back.registered_in[:12]})")


@registry.command("deprecate")
@click.argument("name")
@click.argument("tag")
@click.option("--reason", required=True, help="Why the version is taken back (kept in the ledger and git history).")
def registry_deprecate(name: str, tag: str, reason: str) -> None:
    """Take NAME@TAG back: windows and sensors skip it, and a replacement may be registered under TAG."""
    try:
        taken_back = open_registry().deprecate(name, tag, reason)
    except RegistryError as error:
        fail(str(error))
    click.echo(f"deprecated {taken_back.ref} ({taken_back.version.rows} rows, md5 {taken_back.version.md5}): {taken_back.reason}\n"
               f"windows and sensors skip it from now on; register a replacement with: ok-ml registry add {name} PATH --tag {tag}")


@registry.command("get")
@click.argument("ref")
@click.argument("path", type=click.Path(path_type=Path))
def registry_get(ref: str, path: Path) -> None:
    """Copy the registered bytes of NAME@TAG to PATH."""
    name, sep, tag = ref.partition("@")
    if not sep:
        fail(f"{ref!r} is not NAME@TAG")
    try:
        written = open_registry().get(name, tag, path)
    except RegistryError as error:
        fail(str(error))
    click.echo(f"wrote {written}")


@main.group()
def model() -> None:
    """The MLflow Model Registry: champion and challenger versions."""


@model.command("rollback")
@click.argument("experiment")
@click.argument("version", required=False)
def model_rollback(experiment: str, version: str | None) -> None:
    """Move EXPERIMENT's champion back to VERSION (default: the one it replaced) and re-publish its recommendations."""
    from ok_ml_assets.definitions import build_resources
    from ok_ml_assets.lifecycle import LifecycleError, rollback
    from ok_ml_assets.orchestration import record_rollback

    settings = load_settings()
    resources = build_resources(settings)
    try:
        target, report = rollback(resources["mlflow"], resources["kafka"], experiment, version)
    except (LifecycleError, LookupError) as error:
        fail(str(error))
    except KafkaException as error:
        fail(f"publication failed, the champion was not moved: {error}")
    click.echo(f"champion of {experiment} is now v{target}; re-published {report.messages} messages")
    try:
        key = record_rollback(settings, experiment, target, report.messages)
    except (ConfigError, OSError) as error:
        fail(f"rolled back, but the Dagster instance was not told: {error}")
    click.echo(f"recorded as an observation of {key.to_user_string()} in the Dagster instance")


@main.command()
@click.argument("experiment")
@click.argument("version")
def reproduce(experiment: str, version: str) -> None:
    """Retrain EXPERIMENT's model VERSION from its recorded commit, data and seed, and compare with the record."""
    from ok_ml_assets.definitions import build_resources
    from ok_ml_assets.lifecycle import LifecycleError
    from ok_ml_assets.lifecycle import reproduce as reproduce_version

    settings = load_settings()
    try:
        result = reproduce_version(build_resources(settings)["mlflow"], registry_client(settings), experiment, version)
    except (LifecycleError, RegistryError, LookupError) as error:
        fail(str(error))
    click.echo(result.verdict())
    sys.exit(0 if result.reproduced else 1)


@main.group()
def monitoring() -> None:
    """Monitoring references: the statistics drift is measured against."""


@monitoring.command("accept")
@click.argument("experiment")
@click.argument("asset")
@click.option("--reason", required=True, help="Why the current statistics are right (recorded with the reference).")
def monitoring_accept(experiment: str, asset: str, reason: str) -> None:
    """Accept ASSET's current value as EXPERIMENT's monitoring reference, after an intended shift the drift rules block."""
    import pandas as pd

    from ok_ml_assets.monitoring import ReferenceStore, summarize

    settings = load_settings()
    try:
        config = load_experiment_config(settings.configs_dir / f"{experiment}.yml")
    except (ConfigError, OSError) as error:
        fail(f"experiment {experiment!r}: {error}")
    rules = config.monitoring.get(asset)
    path = settings.assets_dir / experiment / f"{asset}.parquet"
    if not rules:
        fail(f"{experiment} has no monitoring rules for {asset!r}; monitored assets are {sorted(config.monitoring)}")
    if not path.exists():
        fail(f"{experiment}/{asset} has not been materialized yet ({path} is missing)")
    summary = summarize(rules, pd.read_parquet(path))
    ReferenceStore(settings.monitoring_dir).accept(experiment, asset, summary, run_id=f"accepted by hand: {reason}")
    click.echo(f"accepted {experiment}/{asset} as the monitoring reference ({int(summary.rows)} rows): {reason}")


@main.group()
def serve() -> None:
    """Serving: the online store fed from the publication topics, and the read API by key."""


def experiment_topics() -> list[str]:
    """The publication topic of every experiment config."""
    try:
        return sorted({c.publication.topic for c in load_experiment_configs(load_settings().configs_dir)})
    except ConfigError as error:
        fail(str(error))


@serve.command("ingest")
@click.option("--topic", "topics", multiple=True, help="Topic(s) to ingest; every experiment's publication topic by default.")
@click.option("--batch-size", default=5000, show_default=True, help="Messages per store commit.")
@click.option("--until-idle", type=float, default=None, help="Stop after this many seconds without a message (default: until Ctrl-C).")
def serve_ingest(topics: tuple[str, ...], batch_size: int, until_idle: float | None) -> None:
    """Consume the publication topics (read_committed) into the online store: REDIS_URL, else LMDB in OK_ML_HOME."""
    import logging
    import signal
    import threading

    from ok_ml_assets.serving.ingest import Ingester
    from ok_ml_assets.serving.stores import store_from_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    store = store_from_env(settings.home)
    consumer = {"bootstrap.servers": settings.kafka_bootstrap_servers, **settings.kafka_security}
    with Ingester(store, consumer, list(topics) or experiment_topics(), batch_size=batch_size) as ingester:
        click.echo(f"ingesting {', '.join(ingester.topics)} from {settings.kafka_bootstrap_servers} into {type(store).__name__}")
        ingester.run(stop, until_idle)
    store.close()


@serve.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=int, default=lambda: int(os.environ.get("OK_ML_SERVING_PORT", "8700")), show_default="8700",
              help="Port (env OK_ML_SERVING_PORT).")
def serve_api_command(host: str, port: int) -> None:
    """Serve every experiment's predictions by key: GET /v1/{experiment}/{key}, /health, /ready, /metrics."""
    from ok_ml_assets.serving.api import serve_api
    from ok_ml_assets.serving.stores import store_from_env

    experiments = [c.experiment_name for c in load_experiment_configs(load_settings().configs_dir)]
    click.echo(f"serving {', '.join(experiments)} on http://{host}:{port}/v1/<experiment>/<key>")
    serve_api(store_from_env(load_settings().home), host=host, port=port, experiments=experiments)


@main.command("validate-configs")
def validate_configs() -> None:
    """Load every experiment config, check it against the data registry's catalog, and report the first error."""
    from ok_ml_assets.configs import require_cataloged_datasets
    from ok_ml_assets.registry.catalog import load_catalog

    settings = load_settings()
    try:
        configs = load_experiment_configs(settings.configs_dir)
        require_cataloged_datasets(configs, set(load_catalog(settings.catalog_path).datasets), settings.catalog_path)
    except (ConfigError, CatalogError) as error:
        fail(str(error))
    click.echo(f"{len(configs)} experiment configs are valid: {', '.join(c.experiment_name for c in configs)}")


if __name__ == "__main__":
    main()
