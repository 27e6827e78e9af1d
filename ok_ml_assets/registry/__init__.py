"""The data registry: a catalog of dataset contracts and DVC-stored, versioned datasets."""

from ok_ml_assets.registry.catalog import (
    Catalog,
    ColumnContract,
    DatasetContract,
    load_catalog,
)
from ok_ml_assets.registry.store import (
    DataRegistry,
    DatasetVersion,
    RegistryError,
    registry_client,
)


def __getattr__(name: str) -> object:
    # Validation needs DuckDB and Arrow: loaded when first used, not by every `ok-ml` start (PEP 562).
    if name in ("ContractViolation", "validate_file"):
        from ok_ml_assets.registry import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Catalog",
    "ColumnContract",
    "ContractViolation",
    "DataRegistry",
    "DatasetContract",
    "DatasetVersion",
    "RegistryError",
    "load_catalog",
    "registry_client",
    "validate_file",
]
