"""The follow-up conversation's optional language model, against a real loopback HTTP
server speaking the chat-completions format: used when it answers well, and every
failure (refused, HTTP error, too slow, invalid JSON, a question breaking the linter)
falls back to the built-in engine for that turn."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from closeloop.loop.models import Conversation, FollowUpCase
from closeloop.surveys.models import Account

from .conftest import ApiClient, open_case
from .loopback import free_port
from .test_conversation import COMMENT, say

pytestmark = pytest.mark.django_db


@dataclass
class ChatServer:
    """Answers POST /v1/chat/completions with `content` (or `status`, after `delay`)."""

    port: int
    content: str = '{"message": "Thanks. Which step of the SAML setup failed for you?"}'
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def chat(settings: Any) -> Iterator[ChatServer]:
    server_state = ChatServer(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            server_state.seen.append(
                {
                    "path": self.path,
                    "body": json.loads(body),
                    "auth": self.headers.get("Authorization"),
                }
            )
            if server_state.delay:
                time.sleep(server_state.delay)
            if server_state.raw is not None:
                payload = server_state.raw
            else:
                payload = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": server_state.content},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
            try:
                self.send_response(server_state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", server_state.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LLM_URL = server_state.url
    settings.LLM_MODEL = "llama3.1:8b"
    settings.LLM_API_KEY = "local-key"
    settings.LLM_TIMEOUT_SECONDS = 1.0
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def case(api: ApiClient, smb: Account) -> FollowUpCase:
    return open_case(api, smb, 3, name="Pat Lee", comment=COMMENT)


def first_answer(case: FollowUpCase) -> dict[str, Any]:
    talk = Conversation.objects.get(case=case)
    got = say(Client(), talk, "The SAML configuration kept failing on the IdP step.")
    assert got.status_code == 200
    return dict(got.json()["messages"][0])


def test_it_words_the_next_question_with_the_model(chat: ChatServer, case: FollowUpCase) -> None:
    message = first_answer(case)
    assert message["text"] == "Thanks. Which step of the SAML setup failed for you?"
    request = chat.seen[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer local-key"
    assert request["body"]["model"] == "llama3.1:8b"
    sent = json.dumps(request["body"])
    # Only the customer's words and our question leave: no names, addresses or accounts.
    assert "SAML configuration kept failing" in sent
    assert "Pat" not in sent and "example.com" not in sent and "Initech" not in sent


@pytest.mark.parametrize(
    "shape",
    [
        {"status": 500},
        {"delay": 2.0},
        {"content": "Sure! Here is a question: what broke?"},
        {"content": '{"message": "Sorry about that! What broke?"}'},
        {"content": '{"message": "What broke? And when?"}'},
        {"content": '{"text": "What broke?"}'},
        {"raw": b"<html>gateway</html>"},
    ],
    ids=["http-500", "timeout", "not-json", "apology", "two-questions", "wrong-key", "not-chat"],
)
def test_it_falls_back_to_its_own_words_when_the_model_fails(
    chat: ChatServer, case: FollowUpCase, shape: dict[str, Any]
) -> None:
    for key, value in shape.items():
        setattr(chat, key, value)
    began = time.monotonic()
    message = first_answer(case)
    assert message["text"].endswith("How much does this get in your team's way?")
    assert time.monotonic() - began < 5  # the timeout holds, whatever the model does


def test_it_falls_back_when_the_model_is_unreachable(settings: Any, case: FollowUpCase) -> None:
    settings.LLM_URL = f"http://127.0.0.1:{free_port()}/v1"
    settings.LLM_MODEL = "any"
    message = first_answer(case)
    assert message["text"].endswith("How much does this get in your team's way?")


def test_it_lets_the_model_write_the_summary_and_keeps_its_own_where_the_model_is_silent(
    chat: ChatServer, case: FollowUpCase
) -> None:
    talk = Conversation.objects.get(case=case)
    chat.content = '{"message": "What else?"}'
    chat.content = json.dumps(
        {
            "root_cause": "SAML setup fails at the identity-provider step",
            "desired_fix": "",
            "impact": "A week of two engineers",
        }
    )
    # A stop ends it at once: the model then writes the summary (its question wording is
    # refused here: the answer has no "message").
    say(Client(), talk, "The SAML setup kept failing. Please stop asking me questions.")
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.STOPPED
    assert talk.summary["root_cause"] == "SAML setup fails at the identity-provider step"
    assert talk.summary["impact"] == "A week of two engineers"
    assert talk.summary["desired_fix"] == ""  # neither the model nor the engine found one


def test_it_keeps_the_built_in_summary_when_the_model_answers_nonsense(
    chat: ChatServer, case: FollowUpCase
) -> None:
    chat.content = json.dumps({"root_cause": ["not", "a", "string"]})
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "The SAML setup kept failing. Please stop asking me questions.")
    talk.refresh_from_db()
    assert "Setting up SSO took us three weeks" in talk.summary["root_cause"]
