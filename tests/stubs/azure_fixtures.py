"""Pytest fixtures for Azure tests: an ARM stub over TLS per test, clients pointed at it."""

from __future__ import annotations

import pytest

from stubs.arm_stub import ARMStub, make_cert


@pytest.fixture(scope="session")
def arm_cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("armtls"))


@pytest.fixture
def arm(arm_cert, monkeypatch, tmp_path):
    """A fresh ARM stub; a fixed bearer token (never a real Azure login)."""
    from skybroker.clouds.azure import errors as az_errors

    stub = ARMStub().start(*arm_cert)
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT",
                "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure"))
    monkeypatch.setenv("SKYBROKER_AZURE_ENDPOINT", stub.url)
    monkeypatch.setenv("SKYBROKER_AZURE_CA_BUNDLE", arm_cert[0])
    monkeypatch.setenv("SKYBROKER_AZURE_TOKEN", "test-token")
    monkeypatch.setenv("SKYBROKER_AZURE_POLLING_INTERVAL", "0")
    monkeypatch.setenv("SKYBROKER_AZURE_RETRY_BACKOFF", "0.001")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    monkeypatch.setattr(az_errors, "RETRY_BASE_S", 0.001)
    yield stub
    stub.stop()
