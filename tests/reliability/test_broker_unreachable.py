"""A run whose broker does not answer stops before training, with one line naming the servers, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.test_model_lifecycle import free_port


def test_a_run_without_a_reachable_broker_stops_before_training(tmp_path):
    servers = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OK_ML_HOME": str(tmp_path / "home"), "KAFKA_BOOTSTRAP_SERVERS": servers}
    for name in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "OK_ML_CONFIGS_DIR"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "ok_ml_assets.cli", "run", "--preset", "tiny", "--experiment", "antispam_bots"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: Kafka at {servers} is unreachable: ") and "nothing was trained" in run.stderr
    assert "%3|" not in run.stdout + run.stderr, "librdkafka's retry lines belong in the log file"
    assert not (tmp_path / "home" / "mlflow").exists() and not (tmp_path / "home" / "registry").exists()


def test_a_broker_lost_mid_publication_gives_the_products_message_not_the_aborts_timeout():
    import pytest
    from confluent_kafka import KafkaError, KafkaException

    from ok_ml_assets.resources.kafka import PublicationError, abort

    class LostBroker:
        def abort_transaction(self, timeout):
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to abort transaction: timed out"))

    with pytest.raises(PublicationError, match="nothing was published; the transaction was aborted") as raised:
        abort(LostBroker(), "exp.scores", RuntimeError("3 messages unacknowledged"))
    assert "exp.scores" in str(raised.value) and "3 messages unacknowledged" in str(raised.value)
