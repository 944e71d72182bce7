"""URLs of the Delighted-compatible API, each with or without Delighted's `.json` suffix."""

from django.urls import re_path

from . import delighted as d
from .delighted_protocol import endpoint

urlpatterns = [
    re_path(
        r"^people(?:\.json)?$",
        endpoint({"GET": d.list_people, "POST": d.create_person}),
        name="delighted-people",
    ),
    re_path(
        r"^people/(?P<identifier>[^/]+?)/survey_requests/pending(?:\.json)?$",
        endpoint({"DELETE": d.delete_pending}),
        name="delighted-pending",
    ),
    re_path(
        r"^people/(?P<identifier>[^/]+?)(?:\.json)?$",
        endpoint({"DELETE": d.delete_person}),
        name="delighted-person",
    ),
    re_path(
        r"^survey_responses(?:\.json)?$",
        endpoint({"GET": d.list_responses, "POST": d.create_response}),
        name="delighted-responses",
    ),
    re_path(
        r"^survey_responses/(?P<pk>[^/]+?)(?:\.json)?$",
        endpoint({"GET": d.get_response, "PUT": d.update_response}),
        name="delighted-response",
    ),
    re_path(r"^metrics(?:\.json)?$", endpoint({"GET": d.metrics}), name="delighted-metrics"),
    re_path(
        r"^unsubscribes(?:\.json)?$",
        endpoint({"GET": d.list_unsubscribes, "POST": d.create_unsubscribe}),
        name="delighted-unsubscribes",
    ),
    re_path(r"^bounces(?:\.json)?$", endpoint({"GET": d.list_bounces}), name="delighted-bounces"),
]
