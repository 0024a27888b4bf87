"""The committed provisioning folder equals a fresh build; every panel has a unit and queries
TimescaleDB through the PostgreSQL query type; the SDK reads the JSON back."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import DASHBOARDS, PROVISIONING_DIR, provisioning_files, to_json
from dashboards.query import DATASOURCE_UID, PLUGIN_ID, PostgresQuery, register_postgres_query

ROOT = Path(__file__).resolve().parents[2]


def test_committed_provisioning_equals_a_fresh_build() -> None:
    files = provisioning_files()
    for rel, text in files.items():
        path = ROOT / PROVISIONING_DIR / rel
        assert path.is_file(), f"{path} missing: run `wattwatch dashboards build`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `wattwatch dashboards build`"
        )
    on_disk = {p.relative_to(ROOT / PROVISIONING_DIR) for p in (ROOT / PROVISIONING_DIR).rglob("*")
               if p.is_file()}  # fmt: skip
    assert on_disk == set(files), "files in the provisioning folder that the build does not make"


def test_build_is_deterministic() -> None:
    assert provisioning_files() == provisioning_files()


def test_every_panel_has_a_unit_and_uses_the_timescaledb_datasource() -> None:
    uids = set()
    for spec in DASHBOARDS:
        data = to_json(spec)
        uids.add(data["uid"])
        assert data["timezone"] == "Europe/Paris"
        ids = [p["id"] for p in data["panels"]]
        assert len(set(ids)) == len(ids)
        titles = [p["title"] for p in data["panels"]]
        assert len(set(titles)) == len(titles), f"{spec.slug}: duplicate panel titles"
        for panel in data["panels"]:
            where = f"{spec.slug} / {panel['title']}"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            assert panel["datasource"] == {"type": PLUGIN_ID, "uid": DATASOURCE_UID}, where
            assert panel.get("description"), f"{where}: no description"
            for target in panel["targets"]:
                assert target["rawQuery"] and target["editorMode"] == "code", where
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
    assert len(uids) == len(DASHBOARDS)


def test_template_variables_cover_municipality_building_meter_and_carrier() -> None:
    names = {
        var["name"]
        for spec in DASHBOARDS
        for var in to_json(spec).get("templating", {}).get("list", [])
    }
    assert {"municipality", "building", "meter", "carrier"} <= names


def test_the_sdk_reads_our_queries_back_through_the_registered_variant() -> None:
    register_postgres_query()
    data = json.loads((ROOT / PROVISIONING_DIR / "dashboards/wattwatch/city.json").read_text())
    decoded = Dashboard.from_json(data)
    targets = [t for p in decoded.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets and all(isinstance(t, PostgresQuery) for t in targets)
    assert all(t.raw_sql and t.ref_id for t in targets if isinstance(t, PostgresQuery))
    assert PLUGIN_ID in runtime.Runtime().dataquery_variants


def test_datasource_yaml_uses_the_reader_role_with_timescaledb_on() -> None:
    text = (ROOT / PROVISIONING_DIR / "datasources/wattwatch.yaml").read_text()
    (ds,) = yaml.safe_load(text)["datasources"]
    assert ds["type"] == PLUGIN_ID and ds["uid"] == DATASOURCE_UID
    assert ds["user"] == "wattwatch_reader"
    assert ds["jsonData"]["timescaledb"] is True
    assert ds["secureJsonData"]["password"] == "${WATTWATCH_GRAFANA_DB_PASSWORD}"
    provider = yaml.safe_load((ROOT / PROVISIONING_DIR / "dashboards/wattwatch.yaml").read_text())
    assert provider["providers"][0]["options"]["path"].endswith("dashboards/wattwatch")
