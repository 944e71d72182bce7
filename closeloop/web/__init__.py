"""The pages: views, templates and static files; the customer-facing survey pages too."""
