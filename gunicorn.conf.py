"""gunicorn's settings for closeloop, read from the working directory by `gunicorn`
(as `make run` and the README's production command start it).

Each web process loads the theme and sentiment models in a background thread as soon
as it starts, so the first `POST /api/v1/themes/classify` is answered in the usual time
instead of paying seconds of model loading (a request that arrives during the load
waits for it). `WEB_PRELOAD_MODELS=off` leaves them to the first call (a smaller web
process for installs that never classify through the API)."""

import os

timeout = int(os.environ.get("WEB_TIMEOUT_SECONDS", "30"))


def post_worker_init(worker: object) -> None:
    if os.environ.get("WEB_PRELOAD_MODELS", "on").lower() not in ("0", "off", "false"):
        from closeloop.themes.analysis import warm_up_in_background

        warm_up_in_background()
