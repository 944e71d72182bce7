"""An optional language model for the follow-up conversation: it may phrase the next
question and write the summary's root cause, desired fix and impact.

Off unless LLM_URL names an OpenAI-compatible chat-completions endpoint (a local vLLM,
Ollama or llama.cpp server: `http://127.0.0.1:11434/v1`, or the full
`…/chat/completions` URL), with LLM_MODEL and optionally LLM_API_KEY. Every answer is
asked for as JSON and checked: a question must pass the conversation's linter, a
summary must hold three strings. Any failure (refused connection, HTTP error, no
answer within LLM_TIMEOUT_SECONDS, invalid JSON, a question that breaks a rule) is
logged and the built-in engine's own words are used for that turn.

What leaves the machine (docs/conversation.md): the customer's comment and answers,
closeloop's built-in question for the step, the step's name and the language. Never
names, email addresses, accounts or scores.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.conf import settings

log = logging.getLogger("closeloop.llm")

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")
MAX_FIELD = 1000

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "nl": "Dutch",
    "pt": "Portuguese",
}


def enabled() -> bool:
    return bool(settings.LLM_URL and settings.LLM_MODEL)


def _endpoint() -> str:
    url = settings.LLM_URL.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def _post(body: dict[str, Any]) -> str:
    headers = {"Content-Type": "application/json"}
    if settings.LLM_API_KEY:
        headers["Authorization"] = f"Bearer {settings.LLM_API_KEY}"
    request = urllib.request.Request(  # noqa: S310 - an admin-set http(s) URL
        _endpoint(), data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    timeout = settings.LLM_TIMEOUT_SECONDS
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        raw = response.read(200_000)
    answer = json.loads(raw)
    content = answer["choices"][0]["message"]["content"]
    if not isinstance(content, str):
        raise ValueError("the answer's content is not text")
    return content


def ask(system: str, user: str) -> dict[str, Any] | None:
    """The model's JSON object for one question; None on any failure or timeout."""
    if not enabled():
        return None
    body = {
        "model": settings.LLM_MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "temperature": 0.2,
        "response_format": {"type": "json_object"},
    }
    future = _pool.submit(_post, body)
    try:
        content = future.result(timeout=settings.LLM_TIMEOUT_SECONDS)
        found = json.loads(_strip_fence(content))
    except FutureTimeout:
        log.warning("language model: no answer within %ss", settings.LLM_TIMEOUT_SECONDS)
        return None
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("language model failed: %s", type(exc).__name__ + ": " + str(exc)[:200])
        return None
    return found if isinstance(found, dict) else None


def _strip_fence(content: str) -> str:
    """Models often wrap JSON in a ``` fence; the object inside is what counts."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


QUESTION_SYSTEM = (
    "You help a customer-success manager follow up with an unhappy customer. Write the "
    "next message of a short written conversation: one open, specific question that "
    "follows the customer's own words, with an optional short acknowledgement before it. "
    "Rules: under 40 words, exactly one question mark, no apology, no discount or refund, "
    "never ask for a better score, never ask what the customer already said. Answer in "
    '{language} as JSON: {{"message": "..."}}'
)


def phrase(step: str, builtin: str, said: list[str], locale: str) -> str | None:
    """The model's wording of the step's question, or None (then `builtin` is used)."""
    language = LANGUAGE_NAMES.get(locale.split("-")[0].lower(), "English")
    user = json.dumps(
        {"step": step, "suggested_question": builtin, "customer_said": said}, ensure_ascii=False
    )
    found = ask(QUESTION_SYSTEM.format(language=language), user)
    message = found.get("message") if found else None
    if not isinstance(message, str) or not message.strip():
        return None
    return " ".join(message.split())


SUMMARY_SYSTEM = (
    "Read what an unhappy customer wrote and answer as JSON with three short strings in "
    '{language}: {{"root_cause": what went wrong for them, "desired_fix": what they say '
    'would fix it, "impact": what it costs them}}. Use their words; an empty string when '
    "they did not say."
)


def summary_fields(said: list[str], locale: str) -> dict[str, str] | None:
    """root_cause, desired_fix and impact in the model's words, or None."""
    language = LANGUAGE_NAMES.get(locale.split("-")[0].lower(), "English")
    found = ask(SUMMARY_SYSTEM.format(language=language), json.dumps(said, ensure_ascii=False))
    if found is None:
        return None
    keys = ("root_cause", "desired_fix", "impact")
    if not all(isinstance(found.get(k), str) for k in keys):
        log.warning("language model: the summary is not three strings")
        return None
    return {k: " ".join(str(found[k]).split())[:MAX_FIELD] for k in keys}
