"""`manage.py ensure_admin`: make sure an admin login exists and print it."""

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from closeloop.team.models import Role, User


class Command(BaseCommand):
    help = "Create the first admin (user 'admin', random password kept in DATA_DIR) and print it."

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.DATA_DIR / "admin-password"
        user = User.objects.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(
                "admin", "admin@localhost", password, first_name="Admin", role=Role.ADMIN
            )
            path.write_text(password)
            path.chmod(0o600)
            # Printed once, when it is made; later starts point at the file instead, so
            # the password does not end up in every log of every start.
            self.stdout.write(f"Admin login: user 'admin', password '{password}'")
        elif path.exists() and user.check_password(path.read_text()):
            self.stdout.write(f"Admin login: user 'admin', password in {path}")
        else:
            self.stdout.write(
                "Admin login: user 'admin' (password changed since set-up; reset it with "
                "`manage.py changepassword admin`)"
            )
