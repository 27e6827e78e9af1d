"""Online metrics: how the published lists fared against the clicks and likes of the following days."""

from __future__ import annotations

import numpy as np
import pandas as pd

ENGAGEMENT_EVENTS = ("click", "like", "comment")


def engaged_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user, source) pairs with an engaging event (click, like or comment)."""
    engaged = interactions[interactions["event"].isin(ENGAGEMENT_EVENTS)]
    return engaged[["user_id", "source_id"]].drop_duplicates()


def online_metrics(lists: pd.DataFrame, engaged: pd.DataFrame, k: int) -> pd.DataFrame:
    """precision@k, recall@k and hit rate per arm, over users of each arm who engaged with anything later."""
    exploded = lists[["user_id", "arm", "source_ids"]].explode("source_ids").dropna()
    exploded = exploded.assign(rank=exploded.groupby("user_id").cumcount()).query("rank < @k")
    exploded["source_id"] = exploded["source_ids"].astype(np.int64)
    hits = exploded.merge(engaged, on=["user_id", "source_id"])
    per_user = lists[["user_id", "arm"]].merge(
        engaged.groupby("user_id").size().rename("relevant").reset_index(), on="user_id"
    )
    per_user = per_user.merge(hits.groupby("user_id").size().rename("hits").reset_index(), on="user_id", how="left")
    per_user["hits"] = per_user["hits"].fillna(0)
    rows = []
    for arm, group in per_user.groupby("arm"):
        rows.append({
            "arm": arm,
            "users": len(group),
            f"precision_at_{k}": float((group["hits"] / k).mean()),
            f"recall_at_{k}": float((group["hits"] / group["relevant"]).mean()),
            f"capped_recall_at_{k}": float((group["hits"] / group["relevant"].clip(upper=k)).mean()),
            "hit_rate": float((group["hits"] > 0).mean()),
        })
    return pd.DataFrame(rows)
