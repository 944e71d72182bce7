"""The Django admin pages of the team app's models."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class CloseloopUserAdmin(UserAdmin[User]):
    list_display = ("username", "email", "first_name", "last_name", "role", "manager", "is_active")
    list_filter = ("role", "is_active")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("Role", {"fields": ("role", "manager", "time_zone", "monthly_report", "booking_url")}),
    )
