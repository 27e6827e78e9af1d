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
from ok_ml_assets.registry.validation import ContractViolation, validate_file

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
