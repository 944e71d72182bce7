"""The HubSpot sync through the official hubspot-api-client, against a loopback server
that answers as HubSpot's CRM v3 API documents (tests/hubspot_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from closeloop.integrations import hubspot
from closeloop.integrations.models import HubSpotNote, HubSpotSync
from closeloop.loop import actions
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case
from .hubspot_server import HubSpotServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(settings: Any) -> Iterator[HubSpotServer]:
    server = HubSpotServer()
    settings.HUBSPOT_ACCESS_TOKEN = server.state.token
    settings.HUBSPOT_API_URL = server.url
    state = server.state
    state.add_owner("11", "alex@example.com", "Alex", "Agent")
    state.add_owner("12", "ghost@vendor.example", "Gone", "Person")
    state.add_company(
        "101",
        name="Initech",
        domain="initech.example",
        arr="9000.50",
        tier="mid-market",
        hubspot_owner_id="11",
        lifecyclestage="customer",
    )
    state.add_company("102", name="Globex Corporation", domain="globex.example", arr="120000")
    state.add_company("103", name="Umbrella", lifecyclestage="customer", arr="30000")
    state.add_company("104", name="Lead Co", lifecyclestage="lead")
    state.add_company(
        "105", name="Bad Figures", lifecyclestage="customer", arr="lots", hubspot_owner_id="12"
    )
    yield server
    server.close()


def _run() -> HubSpotSync:
    run = hubspot.request()
    assert hubspot.handle_hubspot_sync()
    run.refresh_from_db()
    return run


def test_it_pulls_owners_arr_and_tier_and_pushes_scores_and_notes(
    crm: HubSpotServer, api: ApiClient, smb: Account, enterprise: Account, agent: User
) -> None:
    smb.owner = None
    smb.save()
    case = open_case(api, smb, 3, "pat@example.com", comment="Exports time out")
    api.post_json("/api/v1/responses", answer_at(enterprise, 9, "ceo@globex.example"))
    run = _run()
    assert run.status == "partial" and run.finished_at is not None
    assert (run.companies, run.skipped, run.created, run.updated) == (5, 1, 2, 2)
    assert run.errors == [
        "company 105 (Bad Figures): hubspot_owner_id 12 (ghost@vendor.example) has no "
        "closeloop user with that email",
        "company 105 (Bad Figures): arr: 'lots' is not a number",
    ]
    found = Account.objects.get(pk=smb.pk)
    assert (found.owner, found.arr_cents, found.tier) == (agent, 900050, "mid-market")
    assert found.properties["hubspot_company_id"] == "101"
    enterprise.refresh_from_db()  # matched by its people's email domain
    assert (
        enterprise.arr_cents == 12_000_000 and enterprise.properties["hubspot_company_id"] == "102"
    )
    umbrella = Account.objects.get(name="Umbrella")
    assert umbrella.arr_cents == 3_000_000 and umbrella.properties["hubspot_company_id"] == "103"
    assert not Account.objects.filter(name="Lead Co").exists()
    # Pushed: the closeloop group and properties, then the figures on each company.
    state = crm.state
    assert set(state.properties) == set(hubspot.PROPERTIES) and "closeloop" in state.groups
    initech = state.companies["101"]["properties"]
    assert initech["closeloop_latest_score"] == "3" and initech["closeloop_nps"] == "-100"
    case.refresh_from_db()
    assert initech["closeloop_case_status"] == case.status != "none"
    assert state.companies["102"]["properties"]["closeloop_nps"] == "100"
    assert state.companies["103"]["properties"]["closeloop_case_status"] == "none"
    assert "closeloop_nps" not in state.companies["104"]["properties"]
    assert run.pushed == 4 and state.notes == []
    # The case closes: its note is written once, on the company, however often it syncs.
    actions.close(case, "resolved", "fixed the export", "Shipped the export fix", agent)
    again = _run()
    assert again.notes == 1 and again.created == 0
    (note,) = state.notes
    assert note["companies"] == ["101"] and note["properties"]["hs_timestamp"]
    body = note["properties"]["hs_note_body"]
    assert f"case #{case.pk}" in body and "3/10 from" in body and "Exports time out" in body
    assert "Closed (Resolved) by " in body and "Shipped the export fix" in body
    assert state.companies["101"]["properties"]["closeloop_case_status"] == "none"
    assert _run().notes == 0 and len(state.notes) == 1
    assert HubSpotNote.objects.get().note_id == note["id"]


def test_it_keeps_a_refused_token_as_the_runs_error_and_changes_nothing(
    crm: HubSpotServer, smb: Account, settings: Any
) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-revoked"
    run = _run()
    assert run.status == "failed"
    assert run.errors[0].startswith("stopped: HTTP 401: Authentication credentials not found")
    smb.refresh_from_db()
    assert "hubspot_company_id" not in smb.properties
    assert crm.state.properties == {}


def test_it_shows_the_sync_page_and_syncs_when_an_admin_asks(
    crm: HubSpotServer, admin_user: User, agent: User
) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/settings/integrations/hubspot/").content.decode()
    assert "No sync yet." in page and "Sync now" in page
    assert client.post("/settings/integrations/hubspot/").status_code == 302
    (waiting,) = HubSpotSync.objects.all()
    assert waiting.requested_by == admin_user and waiting.started_at is None
    assert hubspot.handle_hubspot_sync()
    assert not hubspot.handle_hubspot_sync()  # the next is due in an hour
    page = client.get("/settings/integrations/hubspot/").content.decode()
    assert "Done with errors" in page and "&#x27;lots&#x27; is not a number" in page
    assert "5 companies read" in page
    overview = client.get("/settings/integrations/").content.decode()
    assert "HubSpot (CRM)" in overview and "done with errors" in overview
    agent_client = Client()
    agent_client.force_login(agent)
    assert agent_client.get("/settings/integrations/hubspot/").status_code == 403


def test_it_does_nothing_without_a_token(settings: Any, admin_user: User) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = ""
    assert not hubspot.handle_hubspot_sync()
    client = Client()
    client.force_login(admin_user)
    page = client.get("/settings/integrations/hubspot/").content.decode()
    assert "Off: set" in page and "Sync now" not in page
    client.post("/settings/integrations/hubspot/")
    assert not HubSpotSync.objects.exists()
