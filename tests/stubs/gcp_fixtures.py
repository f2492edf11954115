"""Pytest fixtures for GCP tests: a GCE REST stub per test, the product's clients pointed at it."""

from __future__ import annotations

import pytest

from stubs.gce_stub import GCEStub


@pytest.fixture
def gce(monkeypatch, tmp_path):
    """A fresh GCE stub; no ADC anywhere (anonymous credentials via the endpoint override)."""
    from skybroker.clouds.gcp import errors as gcp_errors

    stub = GCEStub().start()
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("SKYBROKER_GCP_ENDPOINT", stub.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj")
    monkeypatch.setattr(gcp_errors, "RETRY_BASE_S", 0.001)
    yield stub
    stub.stop()
