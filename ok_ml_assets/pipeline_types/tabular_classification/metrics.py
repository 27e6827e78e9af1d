"""Classification metrics on a split: ranking quality, calibration, and the operating point for a target precision."""

from __future__ import annotations

import numpy as np

# scikit-learn is imported in the functions that use it: at module level it cost the code location about a second, for
# metrics only a training computes.


def threshold_for_precision(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The lowest score threshold whose precision reaches `target` (most recall); the most precise one otherwise."""
    from sklearn.metrics import precision_recall_curve

    precision, _, thresholds = precision_recall_curve(labels, scores)
    precision = precision[:-1]  # the curve's last point has no threshold
    reaching = np.flatnonzero(precision >= target)
    if reaching.size:
        return float(thresholds[reaching[0]])
    return float(thresholds[int(np.argmax(precision))]) if thresholds.size else 0.5


def calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int) -> float:
    """Expected calibration error: mean |observed rate - mean score| over equal-width score bins, weighted by size."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(labels[inside].mean() - scores[inside].mean())
    return float(total / max(len(scores), 1))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float, bins: int) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log loss, precision/recall/F1 at the threshold, calibration error and positive rate."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    predicted = scores >= threshold
    hits = float((predicted & (labels == 1)).sum())
    precision = hits / predicted.sum() if predicted.any() else 0.0
    recall = hits / (labels == 1).sum() if (labels == 1).any() else 0.0
    both = labels.min() != labels.max()
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else 0.5,
        "pr_auc": float(average_precision_score(labels, scores)) if both else float(labels.mean()),
        "log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision_at_threshold": float(precision),
        "recall_at_threshold": float(recall),
        "f1_at_threshold": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "calibration_error": calibration_error(labels.astype(np.float64), scores, bins),
        "positive_rate": float(predicted.mean()),
    }


def multiclass_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], bins: int) -> dict[str, float]:
    """Macro ROC-AUC (one vs rest), macro PR-AUC, log loss, macro F1, accuracy, per-class recall and calibration."""
    from sklearn.metrics import average_precision_score, f1_score, log_loss, recall_score, roc_auc_score

    predicted = probabilities.argmax(axis=1)
    onehot = np.eye(len(classes))[labels]
    present = [c for c in range(len(classes)) if 0 < onehot[:, c].sum() < len(labels)]
    recalls = recall_score(labels, predicted, labels=list(range(len(classes))), average=None, zero_division=0)
    return {
        "roc_auc": float(np.mean([roc_auc_score(onehot[:, c], probabilities[:, c]) for c in present])) if present else 0.5,
        "pr_auc": float(np.mean([average_precision_score(onehot[:, c], probabilities[:, c]) for c in present])) if present else 0.0,
        "log_loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1), labels=list(range(len(classes))))),
        "macro_f1": float(f1_score(labels, predicted, labels=list(range(len(classes))), average="macro", zero_division=0)),
        "accuracy": float((predicted == labels).mean()),
        "calibration_error": calibration_error((predicted == labels).astype(np.float64), probabilities.max(axis=1), bins),
        **{f"recall_{name}": float(value) for name, value in zip(classes, recalls)},
    }
