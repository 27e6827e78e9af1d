"""ok_ml_assets: registered data to validated, per-user predictions in Kafka, as a Dagster asset graph."""
