"""The Django admin pages of the surveys app's models."""

from django.contrib import admin

from .models import Account, Person, Response, Survey, SurveyRequest


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin[Account]):
    list_display = ("name", "external_id", "tier", "arr_cents", "currency", "owner", "churned_at")
    list_filter = ("tier", "industry", "is_demo")
    search_fields = ("name", "external_id")
    raw_id_fields = ("owner",)
    ordering = ("name",)


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin[Person]):
    list_display = ("email", "name", "external_id", "account", "unsubscribed_at", "bounced_at")
    search_fields = ("email", "name", "external_id")
    raw_id_fields = ("account",)
    ordering = ("email",)


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin[Survey]):
    list_display = ("name", "slug", "throttle_days", "created_at")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(SurveyRequest)
class SurveyRequestAdmin(admin.ModelAdmin[SurveyRequest]):
    list_display = ("person", "survey", "status", "scheduled_at", "sent_at", "answered_at")
    list_filter = ("status", "survey")
    raw_id_fields = ("person",)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin[Response]):
    list_display = ("person", "score", "source", "account", "created_at")
    list_filter = ("source", "survey", "is_demo")
    search_fields = ("comment", "person__email", "external_id")
    raw_id_fields = ("person", "account", "request")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
