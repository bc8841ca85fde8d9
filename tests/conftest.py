"""Shared test fixtures.

Every run draws fresh random inputs: the seed comes from EMBER_TEST_SEED when
set (to replay a failure) and from the OS otherwise; pytest prints it in its
header so any failure can be reproduced.
"""
import os
import secrets

import numpy as np
import pytest

SEED = int(os.environ.get("EMBER_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    return f"ember test seed: EMBER_TEST_SEED={SEED}"


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the run's seed and the test's name."""
    name_hash = int.from_bytes(request.node.nodeid.encode()[-8:].rjust(8, b"\0"), "little")
    return np.random.default_rng([SEED, name_hash])


@pytest.fixture(autouse=True)
def _jax_x64_is_restored():
    """A test that turns on jax_enable_x64 must turn it off again: the flag is
    process-wide, and later tests compare float32 results with JAX's."""
    import sys
    jax = sys.modules.get("jax")
    before = bool(jax.config.jax_enable_x64) if jax else False
    yield
    jax = sys.modules.get("jax")
    if jax and bool(jax.config.jax_enable_x64) != before:
        jax.config.update("jax_enable_x64", before)
        pytest.fail("this test left jax_enable_x64 changed (restored now)")
