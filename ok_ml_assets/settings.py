"""Embedded defaults for every external system, each overridable by an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where the product keeps its state and which systems it talks to."""

    home: Path
    registry_repo: Path
    dvc_remote: str
    catalog_path: Path
    configs_dir: Path
    assets_dir: Path
    monitoring_dir: Path
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    kafka_bootstrap_servers: str
    kafka_security: dict[str, str]
    dagster_ui_url: str
    mlflow_ui_url: str
    spark_master: str = "local[*]"
    spark_dir: Path = PROJECT_ROOT / ".ok_ml" / "spark"
    spark_conf: tuple[tuple[str, str], ...] = ()
    spark_ui_port: int = 4040
    engine: str | None = None


def _path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default).resolve()


def kafka_security_from_env() -> dict[str, str]:
    """librdkafka security settings (SASL/TLS) named by KAFKA_* environment variables."""
    names = {
        "KAFKA_SECURITY_PROTOCOL": "security.protocol",
        "KAFKA_SASL_MECHANISM": "sasl.mechanism",
        "KAFKA_SASL_USERNAME": "sasl.username",
        "KAFKA_SASL_PASSWORD": "sasl.password",
        "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
        "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
        "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    }
    return {key: os.environ[var] for var, key in names.items() if os.environ.get(var)}


def load_settings() -> Settings:
    """Read the environment now (never at import time) and fill in the embedded defaults."""
    home = _path("OK_ML_HOME", PROJECT_ROOT / ".ok_ml")
    mlflow_dir = home / "mlflow"
    return Settings(
        home=home,
        registry_repo=_path("OK_ML_REGISTRY_REPO", home / "registry"),
        dvc_remote=os.environ.get("OK_ML_DVC_REMOTE") or str(home / "dvc-remote"),
        catalog_path=_path("OK_ML_CATALOG", PROJECT_ROOT / "data_registry" / "catalog.yml"),
        configs_dir=_path("OK_ML_CONFIGS_DIR", PROJECT_ROOT / "asset_configs"),
        assets_dir=_path("OK_ML_ASSETS_DIR", home / "assets"),
        monitoring_dir=_path("OK_ML_MONITORING_DIR", home / "monitoring"),
        mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir / 'mlflow.db'}",
        mlflow_artifact_root=os.environ.get("OK_ML_MLFLOW_ARTIFACT_ROOT") or (mlflow_dir / "artifacts").as_uri(),
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or f"127.0.0.1:{os.environ.get('OK_ML_KAFKA_PORT', '9092')}",
        kafka_security=kafka_security_from_env(),
        dagster_ui_url=(os.environ.get("OK_ML_DAGSTER_UI_URL") or "http://127.0.0.1:3000").rstrip("/"),
        mlflow_ui_url=(os.environ.get("OK_ML_MLFLOW_UI_URL") or "http://127.0.0.1:5000").rstrip("/"),
        spark_master=os.environ.get("OK_ML_SPARK_MASTER") or "local[*]",
        spark_dir=_path("OK_ML_SPARK_DIR", home / "spark"),
        spark_conf=spark_conf_from_env(),
        spark_ui_port=int(os.environ.get("OK_ML_SPARK_UI_PORT") or 4040),
        engine=os.environ.get("OK_ML_ENGINE") or None,
    )


def spark_conf_from_env() -> tuple[tuple[str, str], ...]:
    """Extra Spark settings from OK_ML_SPARK_CONF: `key=value` pairs separated by spaces or commas (a cluster's deploy settings)."""
    text = os.environ.get("OK_ML_SPARK_CONF", "").replace(",", " ")
    pairs = []
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("spark."):
            raise ValueError(f"OK_ML_SPARK_CONF: {item!r} is not a spark.<name>=<value> setting")
        pairs.append((key, value))
    return tuple(pairs)
