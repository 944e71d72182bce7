"""A loopback HTTP server that answers as HubSpot's CRM v3 API documents, for the parts
the sync uses: owners, companies (paged reads, batch update), company property groups
and properties, and notes with their association to a company.

Requests need `Authorization: Bearer <token>`; anything else gets HubSpot's 401 body.
Shapes follow developers.hubspot.com (CRM objects, owners, properties, notes):
paged reads answer {"results": [...], "paging": {"next": {"after": "..."}}}; a batch
update answers {"status": "COMPLETE", "results": [...], "startedAt", "completedAt"},
or 207 with "errors" when some ids are unknown.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

NOTE_TO_COMPANY = 190


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, category: str, message: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }


@dataclass
class HubSpotState:
    token: str
    owners: list[dict[str, Any]] = field(default_factory=list)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    page_size_cap: int = 2  # small pages, so paging is exercised

    def add_owner(self, owner_id: str, email: str, first: str, last: str) -> None:
        self.owners.append(
            {
                "id": owner_id,
                "email": email,
                "firstName": first,
                "lastName": last,
                "userId": int(owner_id),
                "userIdIncludingInactive": int(owner_id),
                "type": "PERSON",
                "createdAt": _now(),
                "updatedAt": _now(),
                "archived": False,
                "teams": [],
            }
        )

    def add_company(self, company_id: str, **properties: str | None) -> None:
        self.companies[company_id] = {
            "id": company_id,
            "properties": {"hs_object_id": company_id, **properties},
            "createdAt": _now(),
            "updatedAt": _now(),
            "archived": False,
        }


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], cap: int) -> dict[str, Any]:
    limit = min(int((query.get("limit") or ["10"])[0]), cap)
    start = int((query.get("after") or ["0"])[0])
    found: dict[str, Any] = {"results": items[start : start + limit]}
    if start + limit < len(items):
        found["paging"] = {"next": {"after": str(start + limit), "link": "?after="}}
    return found


def _handler(state: HubSpotState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any = None) -> None:
            raw = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {state.token}":
                return True
            self._reply(
                401,
                _error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
            return False

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.requests.append(("GET", url.path))
            if not self._authorised():
                return
            query = parse_qs(url.query)
            path = url.path.rstrip("/")
            if path == "/crm/v3/owners":
                self._reply(200, _page(state.owners, query, state.page_size_cap))
            elif path == "/crm/v3/objects/companies":
                wanted = [p for value in query.get("properties", []) for p in value.split(",")]
                items = [
                    {
                        **c,
                        "properties": {
                            k: v
                            for k, v in c["properties"].items()
                            if k in wanted or k == "hs_object_id"
                        },
                    }
                    for c in state.companies.values()
                ]
                self._reply(200, _page(items, query, state.page_size_cap))
            elif path.startswith("/crm/v3/properties/companies/groups/"):
                name = path.rsplit("/", 1)[1]
                if name in state.groups:
                    self._reply(200, state.groups[name])
                else:
                    self._reply(404, _error(404, "OBJECT_NOT_FOUND", f"group {name} not found"))
            elif path.startswith("/crm/v3/properties/companies/"):
                name = path.rsplit("/", 1)[1]
                if name in state.properties:
                    self._reply(200, state.properties[name])
                else:
                    self._reply(
                        404, _error(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
                    )
            else:
                self._reply(404, _error(404, "OBJECT_NOT_FOUND", "no such route"))

        def do_POST(self) -> None:
            url = urlparse(self.path)
            state.requests.append(("POST", url.path))
            if not self._authorised():
                return
            body = self._body()
            path = url.path.rstrip("/")
            if path == "/crm/v3/properties/companies/groups":
                group = {
                    "name": body["name"],
                    "label": body["label"],
                    "displayOrder": body.get("displayOrder", -1),
                    "archived": False,
                }
                state.groups[body["name"]] = group
                self._reply(201, group)
            elif path == "/crm/v3/properties/companies":
                missing = [
                    k for k in ("name", "label", "type", "fieldType", "groupName") if k not in body
                ]
                if missing:
                    self._reply(400, _error(400, "VALIDATION_ERROR", f"missing {missing[0]}"))
                    return
                prop = {
                    "name": body["name"],
                    "label": body["label"],
                    "type": body["type"],
                    "fieldType": body["fieldType"],
                    "groupName": body["groupName"],
                    "description": body.get("description", ""),
                    "options": [],
                    "createdAt": _now(),
                    "updatedAt": _now(),
                    "archived": False,
                    "hubspotDefined": False,
                    "formField": False,
                    "displayOrder": -1,
                    "hidden": False,
                    "calculated": False,
                    "externalOptions": False,
                    "hasUniqueValue": False,
                    "modificationMetadata": {
                        "archivable": True,
                        "readOnlyDefinition": False,
                        "readOnlyValue": False,
                    },
                }
                state.properties[body["name"]] = prop
                self._reply(201, prop)
            elif path == "/crm/v3/objects/companies/batch/update":
                started = _now()
                results, errors = [], []
                for item in body["inputs"]:
                    company = state.companies.get(item["id"])
                    unknown = [k for k in item["properties"] if k not in state.properties]
                    if company is None:
                        errors.append(
                            {
                                "status": "error",
                                "category": "OBJECT_NOT_FOUND",
                                "message": "Object not found. objectId are usually numeric. "
                                + item["id"],
                                "context": {"ids": [item["id"]]},
                            }
                        )
                        continue
                    if unknown:
                        self._reply(
                            400,
                            _error(
                                400,
                                "VALIDATION_ERROR",
                                f'Property values were not valid: "{unknown[0]}" does not exist',
                            ),
                        )
                        return
                    company["properties"].update(item["properties"])
                    company["updatedAt"] = _now()
                    results.append(company)
                answer: dict[str, Any] = {
                    "status": "COMPLETE",
                    "results": results,
                    "startedAt": started,
                    "completedAt": _now(),
                }
                if errors:
                    answer["numErrors"] = len(errors)
                    answer["errors"] = errors
                self._reply(207 if errors else 200, answer)
            elif path == "/crm/v3/objects/notes":
                targets = [
                    a["to"]["id"]
                    for a in body.get("associations", [])
                    if any(t.get("associationTypeId") == NOTE_TO_COMPANY for t in a["types"])
                ]
                if not body.get("properties", {}).get("hs_timestamp"):
                    self._reply(400, _error(400, "VALIDATION_ERROR", "hs_timestamp is required"))
                    return
                note = {
                    "id": str(9000 + len(state.notes)),
                    "properties": body["properties"],
                    "createdAt": _now(),
                    "updatedAt": _now(),
                    "archived": False,
                    "companies": targets,
                }
                state.notes.append(note)
                self._reply(201, {k: v for k, v in note.items() if k != "companies"})
            else:
                self._reply(404, _error(404, "OBJECT_NOT_FOUND", "no such route"))

    return Handler


TEST_TOKEN = "pat-na1-test-token"


class HubSpotServer:
    def __init__(self, token: str = TEST_TOKEN) -> None:
        self.state = HubSpotState(token)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
