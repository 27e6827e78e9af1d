"""The data registry as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ok_ml_assets.registry import DataRegistry, load_catalog


class RegistryResource(dg.ConfigurableResource):
    """The DVC-backed data registry: its repository, DVC remote and catalog of contracts."""

    repo_dir: str
    remote: str
    catalog_path: str

    def client(self) -> DataRegistry:
        """A registry client; pipelines read datasets only through it."""
        return DataRegistry(Path(self.repo_dir), self.remote, load_catalog(Path(self.catalog_path)))
