"""Pytest fixtures for AWS tests: one moto server per worker, reset per test, dummy creds.

Import into a test module with `from stubs.aws_fixtures import aws, moto_server  # noqa: F401`.
"""

from __future__ import annotations

import pytest

from stubs.aws_env import isolate_aws_env
from stubs.moto_faults import MotoFaultServer


@pytest.fixture(scope="session")
def moto_server():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    srv = MotoFaultServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def aws_nohome(tmp_path_factory):
    """A stable empty dir for AWS_CONFIG_FILE & co (stable, so boto3 clients stay cached)."""
    return tmp_path_factory.mktemp("no-aws")


@pytest.fixture
def aws(moto_server, monkeypatch, aws_nohome):
    """The moto server with the environment pointing boto3 at it; no faults armed.

    moto is *not* reset between tests (a reset costs ~1 s of backend warm-up): each test has
    its own SKYBROKER_HOME, hence its own broker id, and everything we create or look up is
    filtered by that id, so tests cannot see each other's instances.
    """
    from skybroker.clouds.aws import errors as aws_errors
    from skybroker.clouds.aws import provisioner

    moto_server.clear()
    isolate_aws_env(monkeypatch, aws_nohome, moto_server.url)
    monkeypatch.setattr(aws_errors, "RETRY_BASE_S", 0.001)
    monkeypatch.setattr(provisioner, "_AMI_CACHE", provisioner._AMI_CACHE)  # restored after
    yield moto_server
    moto_server.clear()
    moto_server.purge_terminated()
