"""The MLflow pyfunc flavour of a trained recommender (imported only when logging or loading a model)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.recommendation_als.scoring import recommendation_table, top_k
from ok_ml_assets.pipeline_types.recommendation_als.training import interaction_matrix


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Top-K sources for the user ids it is given, from the logged embeddings, never a pair its training excluded."""

    def load_context(self, context) -> None:
        data = np.load(context.artifacts["embeddings"])
        self.user_ids, self.user_factors = data["user_ids"], data["user_factors"]
        self.source_ids, self.source_factors = data["source_ids"], data["source_factors"]
        # Models logged before exclusions were configurable carry only the subscriptions, under their old names.
        prefix = "excluded" if "excluded_user_ids" in data else "subscribed"
        self.excluded = pd.DataFrame({"user_id": data[f"{prefix}_user_ids"], "source_id": data[f"{prefix}_source_ids"]})
        self.k = int(data["k"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per known user id (sorted): the recommended source ids and scores."""
        wanted = np.unique(np.asarray(model_input["user_id"], dtype=np.int64))
        rows = np.searchsorted(self.user_ids, wanted).clip(0, max(len(self.user_ids) - 1, 0))
        known = self.user_ids[rows] == wanted
        users = wanted[known]
        exclude = interaction_matrix(self.excluded, users, self.source_ids)
        items, scores = top_k(self.user_factors[rows[known]], self.source_factors, exclude, self.k)
        return recommendation_table(users, self.source_ids, items, scores)
