"""pytest plugin (entry point ``pytest11: bioscale``): the ``bioscale_harness`` fixture."""

import pytest


@pytest.fixture
def bioscale_harness(tmp_path):
    """A :class:`bioscale.testing.Harness` writing its runs under ``tmp_path``."""
    from bioscale.testing import Harness

    return Harness(tmp_path)
