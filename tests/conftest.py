"""Shared fixtures: one embedded Ray per test session, scratch directories, real git repositories."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One embedded local Ray for the whole test session (it costs ~3 s and ~600 MB to start)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray's socket paths must stay short: keep its temporary folder near the root.
    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
