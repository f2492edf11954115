"""`sky catalog refresh|info` end to end through the CLI (Azure stub: no SDK, fast), and the
refreshed catalog's age/source showing up in `sky show-gpus` and `sky launch --dryrun`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import REPO
from stubs.retail_stub import retail_stub


@pytest.fixture(scope="module")
def stub():
    s = retail_stub().start()
    yield s
    s.stop()


@pytest.fixture
def azure_env(stub, monkeypatch):
    stub.requests.clear()
    stub.faults.clear()
    monkeypatch.setenv("SKYBROKER_AZURE_PRICES_URL", stub.url + "/api/retail/prices")
    monkeypatch.setenv("SKYBROKER_REFRESH_BACKOFF", "0.001")
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)  # shapes from the catalog
    return stub


def run(capsys, *argv: str) -> tuple[int, str, str]:
    from skybroker.cli import main

    with pytest.raises(SystemExit) as ei:
        main(list(argv))
    out, err = capsys.readouterr()
    return ei.value.code, out, err


def test_refresh_then_info_show_gpus_and_dryrun_report_the_new_source(azure_env, capsys,
                                                                      sky_home):
    code, _, err = run(capsys, "catalog", "refresh", "azure", "--no-progress")
    assert code == 0, err
    assert "azure: 14 offers ->" in err and str(sky_home / "catalogs" / "azure.csv") in err

    code, out, _ = run(capsys, "catalog", "info", "--json")
    info = {r["cloud"]: r for r in json.loads(out)}
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert info["azure"]["kind"] == "refreshed" and info["azure"]["date"] == today
    assert info["azure"]["age_days"] == 0 and not info["azure"]["stale"]
    assert "Retail Prices API" in info["azure"]["source"]
    assert info["aws"]["kind"] == "shipped" and info["aws"]["stale"]  # 2026-01 prices

    code, out, _ = run(capsys, "catalog", "status")
    assert code == 0 and "refreshed:" in out
    assert "Warning: aws prices are" in out and "sky catalog refresh aws" in out

    code, out, err = run(capsys, "show-gpus", "V100", "--cloud", "azure")
    assert code == 0
    assert f"azure: prices of {today} (0 days old) from Azure Retail Prices API" in out + err

    code, out, err = run(capsys, "launch", "--dryrun", "--cloud", "azure", "--gpus", "V100:1",
                         str(REPO / "examples" / "minimal.yaml"))
    assert code == 0, err
    assert f"azure refreshed as of {today} (0 days old)" in out + err
    assert "Standard_NC6s_v3" in out


def test_failed_refresh_is_one_line_with_hint_and_exit_1(monkeypatch, capsys, sky_home):
    monkeypatch.setenv("SKYBROKER_AZURE_PRICES_URL", "http://127.0.0.1:9/api/retail/prices")
    code, out, err = run(capsys, "catalog", "refresh", "azure")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: azure refresh failed: cannot reach")
    assert lines[1].startswith("Hint: ")
    assert not (sky_home / "catalogs" / "azure.csv").exists()


def test_unknown_cloud_suggests(capsys):
    code, _, err = run(capsys, "catalog", "refresh", "azur")
    assert code == 2 and "Did you mean 'azure'?" in err


def test_several_clouds_one_failing_reports_each_and_exits_1(azure_env, capsys, monkeypatch,
                                                             sky_home):
    monkeypatch.setenv("SKYBROKER_GCP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "skybroker-test")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sky_home / "no-adc.json"))
    monkeypatch.setenv("SKYBROKER_REFRESH_ATTEMPTS", "1")
    code, out, _ = run(capsys, "catalog", "refresh", "azure", "gcp", "--json",
                       "--out", str(sky_home / "elsewhere"))
    assert code == 1
    report = json.loads(out)
    assert [r["cloud"] for r in report["refreshed"]] == ["azure"]
    assert report["refreshed"][0]["rows"] == 14
    [failed] = report["failed"]
    assert failed["cloud"] == "gcp" and "cannot reach the API at http://127.0.0.1:9" in failed["error"]
    assert (sky_home / "elsewhere" / "azure.csv").exists()
    assert "azure" in json.loads((sky_home / "elsewhere" / "SOURCES.json").read_text())
    assert not (sky_home / "elsewhere" / "gcp.csv").exists()
    assert not (sky_home / "catalogs").exists()  # --out: the catalog in use is untouched
