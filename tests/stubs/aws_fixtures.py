"""Pytest fixtures for AWS tests: one moto server per worker, reset per test, dummy creds.

Import into a test module with `from stubs.aws_fixtures import aws, moto_server  # noqa: F401`.
"""

from __future__ import annotations

import pytest

from stubs.moto_faults import MotoFaultServer


@pytest.fixture(scope="session")
def moto_server():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    srv = MotoFaultServer().start()
    yield srv
    srv.stop()


def isolate_aws_env(monkeypatch, tmp_path, endpoint: str | None) -> None:
    """Dummy credentials only: never a real ~/.aws, profile, SSO cache or instance metadata."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_EC2",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


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
