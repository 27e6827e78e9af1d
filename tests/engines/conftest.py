"""One Spark session for every Spark test module in the process (a session takes seconds to start)."""

from __future__ import annotations

import pytest

from tests.spark_session import shared_spark


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The product's session settings on local[*], in a temporary folder, without the UI."""
    return shared_spark(tmp_path_factory.mktemp("spark"))
