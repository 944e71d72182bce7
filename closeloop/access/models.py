"""Who may call the API, and what it answered: API keys, and the replay store of writes
sent with an Idempotency-Key. Used by the API (authentication, replays), the API keys
page, the worker (forgetting old records) and erasure (records that name a person).

The tables keep their first names (`api_*`): the models were the api app's, and moving
them would move data for nothing."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from closeloop.core.db import delete_some

KEY_PREFIX = "cl_"
# last_used_at is written at most this often, so reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Keys made elsewhere (Delighted's are 32 characters) must be at least this long.
MIN_ADOPTED_LENGTH = 20


def _digest(secret: str) -> str:
    # Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A named credential for scripts and integrations; only its hash is kept."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"
        ADMIN = "admin", "Admin: read, write and settings"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Shown to tell keys apart.")
    hashed_key = models.CharField(max_length=64, db_index=True)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_apikey"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({KEY_PREFIX}{self.prefix}…)"

    @classmethod
    def issue(
        cls, name: str, *, read_only: bool = False, admin: bool = False
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its plain text, which is never stored or shown again."""
        prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        plain = f"{KEY_PREFIX}{prefix}_{secret}"
        key = cls.objects.create(
            name=name,
            prefix=prefix,
            hashed_key=_digest(plain),
            scope=cls._scope(read_only, admin),
        )
        return key, plain

    @classmethod
    def _scope(cls, read_only: bool, admin: bool) -> str:
        if read_only and admin:
            raise ValueError("a key is read-only or admin, not both")
        if admin:
            return cls.Scope.ADMIN
        return cls.Scope.READ if read_only else cls.Scope.READ_WRITE

    @classmethod
    def adopt(
        cls, name: str, plain: str, *, read_only: bool = False, admin: bool = False
    ) -> ApiKey:
        """Accept a key made elsewhere (a Delighted API key), so integrations keep their key."""
        if (
            len(plain) < MIN_ADOPTED_LENGTH
            or plain.startswith(KEY_PREFIX)
            or plain != plain.strip()
        ):
            raise ValueError(
                f"an adopted key needs at least {MIN_ADOPTED_LENGTH} characters, no colon, "
                f"no spaces around it, and must not start with {KEY_PREFIX!r}"
            )
        if cls.objects.filter(hashed_key=_digest(plain)).exists():
            raise ValueError("this key is already known")
        return cls.objects.create(
            name=name,
            prefix=f"x{secrets.token_hex(4)}",
            hashed_key=_digest(plain),
            scope=cls._scope(read_only, admin),
        )

    @classmethod
    def authenticate(cls, plain: str) -> ApiKey | None:
        """The live key matching this plain text, or None; records when it was last used."""
        if not plain.startswith(KEY_PREFIX) or "_" not in plain[len(KEY_PREFIX) :]:
            if len(plain) < MIN_ADOPTED_LENGTH:
                return None
            # An adopted key: found by its hash, which only the true key produces.
            key = cls.objects.filter(hashed_key=_digest(plain), revoked_at__isnull=True).first()
            return key._used() if key is not None else None
        prefix = plain[len(KEY_PREFIX) :].split("_", 1)[0]
        try:
            key = cls.objects.get(prefix=prefix, revoked_at__isnull=True)
        except cls.DoesNotExist:
            return None
        if not hmac.compare_digest(key.hashed_key, _digest(plain)):
            return None
        return key._used()

    def _used(self) -> ApiKey:
        """Record the use (at most once a minute) and return the key."""
        key = self
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key

    @property
    def can_write(self) -> bool:
        return self.scope in (self.Scope.READ_WRITE, self.Scope.ADMIN)

    @property
    def is_admin(self) -> bool:
        """May change settings (channels, policy, templates, teams, rules, announcements,
        themes) and see channel secrets."""
        return self.scope == self.Scope.ADMIN

    def revoke(self) -> None:
        """Stop the key working, keeping the row for the record."""
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class IdempotencyRecord(models.Model):
    """The answer given to a write carrying an Idempotency-Key, replayed on retries."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body: models.JSONField[Any, Any] = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "api_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"

    @staticmethod
    def cutoff() -> datetime:
        """Records made before this are forgotten: the key may be used again."""
        return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)

    @classmethod
    def expire(cls, limit: int = 5000) -> int:
        """Delete up to `limit` forgotten records; how many went."""
        return delete_some(cls.objects.filter(created_at__lt=cls.cutoff()), limit)


def handle_idempotency_expiry() -> bool:
    """Worker step: forget Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS."""
    return IdempotencyRecord.expire() > 0
