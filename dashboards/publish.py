"""Push the dashboards to an existing Grafana through its HTTP API (grafana-client).

Idempotent: the folder and datasource are found by uid and created or updated, dashboards are
saved by uid with ``overwrite``. Failures become one :class:`PublishError` line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from dashboards.build import DASHBOARDS, FOLDER_TITLE, FOLDER_UID, datasource_settings, to_json
from dashboards.query import DATASOURCE_UID
from wattwatch.errors import WattwatchError

TIMEOUT_S = 10.0


class PublishError(WattwatchError):
    """Grafana could not be reached, refused the token, or refused a request."""


@dataclass(frozen=True, slots=True)
class GrafanaTarget:
    """Where to publish, and how Grafana reaches TimescaleDB as the read-only role."""

    url: str
    token: str
    db_host: str  # host:port as Grafana's server sees the database
    db_name: str
    db_password: str | None


@dataclass(slots=True)
class PublishReport:
    folder: str = ""  # "created" or "kept"
    datasource: str = ""  # "created" or "updated"
    dashboards: list[str] = field(default_factory=list)  # urls Grafana returned


def _status(exc: GrafanaException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


_MISSING = object()


def _root_cause(exc: BaseException) -> str:
    """The useful end of a connection error ("Connection refused", "cannot resolve host")."""
    text = str(exc)
    if match := re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text):
        return match[1].strip()
    if match := re.search(r"Failed to resolve '([^']+)'", text):
        return f"cannot resolve host {match[1]}"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _call(url: str, what: str, request: Callable[[], Any], *, missing_ok: bool = False) -> Any:
    """One API call, its failures translated into one readable line; with ``missing_ok`` a
    404 returns ``_MISSING``."""
    try:
        return request()
    except GrafanaUnauthorizedError:
        raise PublishError(
            f"Grafana at {url} refused the token (401 Unauthorized) while trying to {what}: "
            "check WATTWATCH_GRAFANA_TOKEN (a service-account token with the Editor or Admin "
            "role)"
        ) from None
    except GrafanaException as exc:
        if missing_ok and isinstance(exc, GrafanaClientError) and _status(exc) == 404:
            return _MISSING
        if _status(exc) == 0:
            raise PublishError(f"cannot reach Grafana at {url}: {exc.message}") from None
        raise PublishError(
            f"Grafana at {url} answered {_status(exc)} while trying to {what}: {exc.message}"
        ) from None
    except (niquests.exceptions.RequestException, OSError) as exc:
        raise PublishError(f"cannot reach Grafana at {url}: {_root_cause(exc)}") from None


def publish(target: GrafanaTarget, report_line: Callable[[str], None]) -> PublishReport:
    """Create or update the folder, the datasource and every dashboard."""
    parts = urlsplit(target.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublishError(f"not a Grafana URL: {target.url!r} (expected http(s)://host:port)")
    api = GrafanaApi.from_url(target.url, credential=target.token, timeout=TIMEOUT_S)
    url = target.url
    report = PublishReport()

    def found(what: str, request: Callable[[], Any]) -> bool:
        return _call(url, what, request, missing_ok=True) is not _MISSING

    if found("read the folder", lambda: api.folder.get_folder(FOLDER_UID)):
        report.folder = "kept"
    else:
        _call(url, "create the folder",
              lambda: api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID))  # fmt: skip
        report.folder = "created"
    report_line(f"folder {FOLDER_TITLE!r}: {report.folder}")

    ds = datasource_settings(url=target.db_host, database=target.db_name,
                             password=target.db_password)  # fmt: skip
    if found("read the datasource", lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)):
        _call(url, "update the datasource",
              lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, ds))  # fmt: skip
        report.datasource = "updated"
    else:
        _call(url, "create the datasource", lambda: api.datasource.create_datasource(ds))
        report.datasource = "created"
    report_line(f"datasource {ds['name']!r} ({target.db_host}/{target.db_name}): "
                f"{report.datasource}")  # fmt: skip

    for spec in DASHBOARDS:
        data = to_json(spec)
        payload = {
            "dashboard": data,
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "wattwatch dashboards publish",
        }
        answer = _call(
            url, f"save dashboard {spec.uid}", partial(api.dashboard.update_dashboard, payload)
        )
        where = str(answer.get("url", spec.uid)) if isinstance(answer, dict) else spec.uid
        report.dashboards.append(where)
        report_line(f"dashboard {data['title']!r}: saved ({where})")
    return report
