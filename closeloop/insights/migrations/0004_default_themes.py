"""The default themes of docs/domain.md §6, and the existing comments queued for them."""

from django.db import migrations

DEFAULT_THEMES = [
    ("usability", "Usability", "Hard to use, confusing, too complicated.",
     ["Which part felt complicated?", "What were you trying to do at that moment?"]),
    ("missing-feature", "Missing feature", "Lacks a capability the customer needs.",
     ["What would it let you do?", "How do you work around it today?"]),
    ("bugs", "Bugs", "Errors, things broken, data wrong.",
     ["What happened, and what did you expect?", "Does it still happen?"]),
    ("performance", "Performance and reliability", "Slow, timeouts, downtime, unreliable availability.",
     ["Where do you notice it being slow or down?", "How often does it happen?"]),
    ("support", "Support", "Slow, unhelpful or hard-to-reach support.",
     ["What was your most recent interaction with support?", "How long did it take?"]),
    ("onboarding", "Onboarding", "Set-up, migration, training, getting started.",
     ["Where did getting started stall?", "Who on your side was setting it up?"]),
    ("pricing", "Pricing", "Too expensive, poor value for money.",
     ["Compared with what?", "Which part doesn't feel worth it?"]),
    ("billing", "Billing", "Invoices, charges, payment problems, contract terms.",
     ["Which charge or invoice is wrong?", "What did you expect to pay?"]),
    ("integrations", "Integrations", "Connections to other tools, API.",
     ["Which tool are you connecting?", "What should flow between them?"]),
    ("documentation", "Documentation", "Docs, help articles, guides missing or wrong.",
     ["What were you looking for?", "Where did you look first?"]),
]


def create(apps, schema_editor):
    Theme = apps.get_model("insights", "Theme")
    for slug, name, description, probes in DEFAULT_THEMES:
        Theme.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "probes": probes}
        )
    Response = apps.get_model("surveys", "Response")
    Response.objects.exclude(comment="").update(themes_status="pending")


def remove(apps, schema_editor):
    apps.get_model("insights", "Theme").objects.filter(
        slug__in=[t[0] for t in DEFAULT_THEMES], tags__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0003_theme_themetag"),
        ("surveys", "0006_response_themes_attempts_response_themes_error_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
