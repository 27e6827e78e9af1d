"""The lifecycle every pipeline type shares: tracking, promotion, the publication gate, rollback, reproduction."""

from ok_ml_assets.lifecycle.operations import (
    LifecycleError,
    PromotionResult,
    Reproduction,
    Rescoring,
    promote_challenger,
    reproduce,
    rollback,
)

__all__ = ["LifecycleError", "PromotionResult", "Reproduction", "Rescoring", "promote_challenger", "reproduce", "rollback"]
