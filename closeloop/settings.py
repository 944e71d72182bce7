"""Settings for closeloop, read from environment variables.

Every variable has a documented default (see README.md, "Configuration"), so a
fresh checkout runs on an embedded SQLite database with nothing set.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import dj_database_url
import django_stubs_ext

# Lets admin classes be written as ModelAdmin[Model] for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """The SECRET_KEY variable, or a random key kept in DATA_DIR so sessions survive restarts."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DEBUG", False)
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
_site_host = urlparse(SITE_URL).hostname or "127.0.0.1"
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", f"{_site_host},127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [SITE_URL]
# Old keys still accepted when checking signatures after SECRET_KEY changes (comma-
# separated): unsubscribe and survey links in emails already sent keep working.
SECRET_KEY_FALLBACKS = [
    k.strip() for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
]
if SITE_URL.startswith("https://"):
    # Served over TLS (usually behind a proxy that says so in X-Forwarded-Proto): cookies
    # only over https, and browsers told to keep to https.
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "closeloop.apps.CloseloopConfig",
    "closeloop.team",
    "closeloop.surveys",
    "closeloop.loop",
    "closeloop.delivery",
    "closeloop.access",
    "closeloop.themes",
    "closeloop.insights",
    "closeloop.integrations",
    "closeloop.api",
    "closeloop.web",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "closeloop.api.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "closeloop.urls"
WSGI_APPLICATION = "closeloop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "closeloop.web.context.unread_notifications",
                "closeloop.web.context.sentiment_model",
                "closeloop.web.context.mail_outages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'closeloop.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("TEST", {})
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"]["NAME"] = os.environ["TEST_DATABASE_NAME"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "team.User"
LOGIN_URL = "/login/"
AUTHENTICATION_BACKENDS = [
    # First: refuses a login from a user and address that failed too often (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins: after LOGIN_FAILURE_LIMIT failures for one username from one address,
# that pair is locked out for LOGIN_LOCKOUT_MINUTES (429); a success clears the count.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"
AXES_VERBOSE = False
# How many proxies stand in front of gunicorn: with none, a client's address is the
# connection's (X-Forwarded-For is whatever a client writes). closeloop/clients.py reads
# it for the login throttle and the link-survey limit alike.
WEB_PROXY_COUNT = int(os.environ.get("WEB_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "closeloop.core.clients.client_address"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# API bodies above this size are refused with 413 before they are parsed.
# How long an Idempotency-Key's answer is kept for replay; after it the key may be reused.
IDEMPOTENCY_TTL_HOURS = float(os.environ.get("IDEMPOTENCY_TTL_HOURS", "24"))
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
CSV_UPLOAD_MAX_BYTES = int(os.environ.get("CSV_UPLOAD_MAX_BYTES", str(50 * 1024 * 1024)))


def _email_settings(url: str) -> dict[str, object]:
    """Translate EMAIL_URL (smtp://user:pass@host:port, smtps://…, console://) to settings."""
    parsed = urlparse(url)
    if parsed.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parsed.scheme not in {"smtp", "smtps", "smtp+tls"}:
        raise ValueError(f"EMAIL_URL: unsupported scheme {parsed.scheme!r}")
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parsed.hostname or "localhost",
        "EMAIL_PORT": parsed.port or (465 if parsed.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parsed.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
        "EMAIL_USE_SSL": parsed.scheme == "smtps",
        "EMAIL_USE_TLS": parsed.scheme == "smtp+tls",
        "EMAIL_TIMEOUT": 30,
    }


EMAIL_URL = os.environ.get("EMAIL_URL", "console://")
globals().update(_email_settings(EMAIL_URL))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "closeloop@localhost")
# Customer replies go to <local>+<case token>@<domain> of this address; route it to closeloop
# (an IMAP mailbox the worker polls, or the inbound HTTP endpoint POST /inbound/email).
REPLY_ADDRESS = os.environ.get("REPLY_ADDRESS", f"replies@{_site_host}")
# The envelope sender (SMTP MAIL FROM) of every email, where servers send later bounce
# reports (RFC 3464). Empty: the From address. Set it to an address that reaches the
# reply mailbox (REPLY_ADDRESS, say) and closeloop reads those reports and marks the
# bounced people, as it does for addresses the server refuses at once.
BOUNCE_ADDRESS = os.environ.get("BOUNCE_ADDRESS", "")
# Your product's name, as outreach templates say it ({product}).
PRODUCT_NAME = os.environ.get("PRODUCT_NAME", "our product")
# Survey emails: who they come from and the name their footer gives.
SURVEY_FROM_EMAIL = os.environ.get("SURVEY_FROM_EMAIL", DEFAULT_FROM_EMAIL)
SURVEY_SENDER_NAME = os.environ.get("SURVEY_SENDER_NAME", "")
# Anonymous answers to a link survey accepted per client address and survey per minute
# (more answer 429); 0 turns the limit off.
LINK_SURVEY_ANSWERS_PER_MINUTE = int(os.environ.get("LINK_SURVEY_ANSWERS_PER_MINUTE", "10"))
# The Delighted-compatible API's rate limit per API key and web process; 0 turns it off.
DELIGHTED_RATE_LIMIT_PER_MINUTE = int(os.environ.get("DELIGHTED_RATE_LIMIT_PER_MINUTE", "3000"))
# Customer replies forwarded to POST /inbound/email must be signed with this secret.
INBOUND_EMAIL_SECRET = os.environ.get("INBOUND_EMAIL_SECRET", "")
# Stripe's webhook signing secret (whsec_…) for POST /api/v1/integrations/stripe (empty = off).
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Segment (POST /api/v1/segment): the write key its libraries send as the Basic-auth user,
# and/or the Webhooks destination's shared secret for X-Signature (both empty = off).
SEGMENT_WRITE_KEY = os.environ.get("SEGMENT_WRITE_KEY", "")
SEGMENT_SHARED_SECRET = os.environ.get("SEGMENT_SHARED_SECRET", "")
# Support desks: Zendesk's webhook signing secret, Intercom's app client secret (empty = off).
ZENDESK_WEBHOOK_SECRET = os.environ.get("ZENDESK_WEBHOOK_SECRET", "")
INTERCOM_CLIENT_SECRET = os.environ.get("INTERCOM_CLIENT_SECRET", "")
# HubSpot sync: a private app's access token (empty = off); the API's address (tests point
# it at a loopback server); which company properties hold ARR and tier; how often it runs.
HUBSPOT_ACCESS_TOKEN = os.environ.get("HUBSPOT_ACCESS_TOKEN", "")
HUBSPOT_API_URL = os.environ.get("HUBSPOT_API_URL", "https://api.hubapi.com")
HUBSPOT_ARR_PROPERTY = os.environ.get("HUBSPOT_ARR_PROPERTY", "arr")
HUBSPOT_TIER_PROPERTY = os.environ.get("HUBSPOT_TIER_PROPERTY", "tier")
HUBSPOT_SYNC_MINUTES = float(os.environ.get("HUBSPOT_SYNC_MINUTES", "60"))
INTEGRATION_MAX_BYTES = int(os.environ.get("INTEGRATION_MAX_BYTES", str(1024 * 1024)))
INBOUND_EMAIL_MAX_BYTES = int(os.environ.get("INBOUND_EMAIL_MAX_BYTES", str(25 * 1024 * 1024)))
# A mailbox the worker polls for replies: imaps://user:password@host:993/INBOX (empty = off).
IMAP_URL = os.environ.get("IMAP_URL", "")
IMAP_POLL_SECONDS = float(os.environ.get("IMAP_POLL_SECONDS", "30"))
# The organisation's time zone: SLA business hours of unassigned cases, report periods.
ORG_TIME_ZONE = os.environ.get("ORG_TIME_ZONE", "UTC")

# Slack and webhook calls give up (and retry later) after this long.
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
# An optional language model for the follow-up conversation (closeloop/loop/llm.py):
# any OpenAI-compatible chat-completions endpoint. Off while LLM_URL is empty.
LLM_URL = os.environ.get("LLM_URL", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS", "5"))
# Slack and webhook calls go only to public internet addresses; hosts listed here
# (comma-separated host or host:port) may be inside the network: on-premise receivers.
OUTBOUND_ALLOW_HOSTS = os.environ.get("OUTBOUND_ALLOW_HOSTS", "")
# How often the worker loop wakes when it has nothing to do, in seconds.
WORKER_IDLE_SECONDS = float(os.environ.get("WORKER_IDLE_SECONDS", "2"))
# The worker tunes the sentiment model in the background once (themes/tuning.py);
# "off" leaves comments to the interim model until someone builds the tuned one.
SENTIMENT_TUNING = _env_bool("SENTIMENT_TUNING", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

NINJA_PAGINATION_MAX_LIMIT = 500
