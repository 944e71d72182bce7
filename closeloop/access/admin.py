"""The Django admin pages of the access app's models."""

from django.contrib import admin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ("name", "prefix", "scope", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "hashed_key", "created_at", "last_used_at")
    actions = ["revoke"]

    def has_add_permission(self, request: object) -> bool:
        # Keys are issued with `manage.py create_api_key` or the API keys page, which show
        # the secret once; the admin cannot show it.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: object, queryset: object) -> None:
        from django.utils import timezone

        queryset.update(revoked_at=timezone.now())  # type: ignore[attr-defined]
