"""Publishing against a local stand-in for Grafana's HTTP API that records every call and
answers like the documented API (routes, status codes, payload shapes, 401 on a bad token)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.build import DASHBOARDS, FOLDER_UID
from dashboards.publish import GrafanaTarget, PublishError, publish
from dashboards.query import DATASOURCE_UID
from wattwatch.stack.system import free_port

TOKEN = "glsa_good"


class FakeGrafana:
    """State of the fake: folders, datasources, dashboards by uid, and the calls made."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def _send(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def _route(self, method: str) -> None:
            state.calls.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Invalid API key"})
                return
            path = self.path
            if method == "GET" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.folders:
                    self._send(200, state.folders[uid])
                else:
                    self._send(404, {"message": "folder not found", "status": "not-found"})
            elif method == "POST" and path == "/api/folders":
                body = self._body()
                if body["uid"] in state.folders:
                    self._send(409, {"message": "a folder with the same uid already exists"})
                    return
                uid = body["uid"]
                folder = {"id": len(state.folders) + 1, "uid": uid, "title": body["title"],
                          "url": f"/dashboards/f/{uid}/"}  # fmt: skip
                state.folders[body["uid"]] = folder
                self._send(200, folder)
            elif method == "GET" and path.startswith("/api/datasources/uid/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.datasources:
                    self._send(200, state.datasources[uid])
                else:
                    self._send(404, {"message": "Data source not found"})
            elif method == "POST" and path == "/api/datasources":
                body = self._body()
                if any(d["name"] == body["name"] for d in state.datasources.values()):
                    self._send(409, {"message": "data source with the same name already exists"})
                    return
                state.datasources[body["uid"]] = {"id": 1, **body}
                self._send(200, {"datasource": state.datasources[body["uid"]], "id": 1,
                                 "message": "Datasource added", "name": body["name"]})  # fmt: skip
            elif method == "PUT" and path.startswith("/api/datasources/uid/"):
                uid = path.rsplit("/", 1)[1]
                if uid not in state.datasources:
                    self._send(404, {"message": "Data source not found"})
                    return
                state.datasources[uid] = {"id": 1, **self._body()}
                self._send(200, {"datasource": state.datasources[uid], "id": 1,
                                 "message": "Datasource updated"})  # fmt: skip
            elif method == "POST" and path == "/api/dashboards/db":
                body = self._body()
                dash = body["dashboard"]
                old = state.dashboards.get(dash["uid"])
                if old is not None and not body.get("overwrite"):
                    self._send(412, {"message": "The dashboard has been changed by someone else",
                                     "status": "version-mismatch"})  # fmt: skip
                    return
                if body.get("folderUid") not in state.folders:
                    self._send(400, {"message": "folder not found"})
                    return
                version = (old or {"version": 0})["version"] + 1
                state.dashboards[dash["uid"]] = {**body, "version": version}
                self._send(200, {"id": len(state.dashboards), "uid": dash["uid"],
                                 "url": f"/d/{dash['uid']}/x", "status": "success",
                                 "version": version, "slug": "x"})  # fmt: skip
            else:
                self._send(404, {"message": "Not found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _target(url: str, token: str = TOKEN) -> GrafanaTarget:
    return GrafanaTarget(url=url, token=token, db_host="db.example:5432", db_name="wattwatch",
                         db_password="s3cret")  # fmt: skip


def test_publish_creates_then_overwrites_idempotently(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    lines: list[str] = []
    first = publish(_target(url), lines.append)
    assert (first.folder, first.datasource) == ("created", "created")
    assert set(state.dashboards) == {s.uid for s in DASHBOARDS}
    assert all(d["folderUid"] == FOLDER_UID and d["overwrite"] for d in state.dashboards.values())
    ds = state.datasources[DATASOURCE_UID]
    assert ds["type"] == "grafana-postgresql-datasource" and ds["jsonData"]["timescaledb"]
    assert ds["user"] == "wattwatch_reader" and ds["secureJsonData"] == {"password": "s3cret"}
    assert ds["url"] == "db.example:5432" and ds["jsonData"]["database"] == "wattwatch"
    assert state.calls[:4] == [
        ("GET", f"/api/folders/{FOLDER_UID}"),
        ("POST", "/api/folders"),
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
        ("POST", "/api/datasources"),
    ]
    state.calls.clear()
    second = publish(_target(url), lines.append)
    assert (second.folder, second.datasource) == ("kept", "updated")
    assert ("POST", "/api/folders") not in state.calls
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in state.calls
    assert len(state.dashboards) == len(DASHBOARDS)
    assert all(d["version"] == 2 for d in state.dashboards.values())
    assert any("saved" in line for line in lines)


def test_bad_token_is_one_clear_line(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    with pytest.raises(PublishError) as err:
        publish(_target(url, token="wrong"), lambda _line: None)
    message = str(err.value)
    assert "401" in message and "WATTWATCH_GRAFANA_TOKEN" in message and "\n" not in message
    assert not state.dashboards


def test_unreachable_url_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PublishError, match="cannot reach Grafana at") as err:
        publish(_target(url), lambda _line: None)
    assert "\n" not in str(err.value)


def test_malformed_url_is_refused_before_any_request() -> None:
    with pytest.raises(PublishError, match="not a Grafana URL"):
        publish(_target("grafana.local:3000"), lambda _line: None)
