"""Pure compute of the pipelines: features, training, scoring, metrics. No Dagster here."""
