"""The health backtest on the demo history (issue 22, "Proof").

In a database of its own, the demo generator's year (its churn, billing, usage and
tickets related as `closeloop.management.demo` documents) is seeded, then the backtest
scores every past month's accounts as they stood then and reports the AUC for churn
within 90 days of:
- account health with the written weights;
- NPS alone (the mean of the account's people's latest answers), and, as the strongest
  survey-only baseline, every survey signal health has (NPS level, falling score,
  silent detractors and passives, no answer) with their written weights.
The gain is health over the better of the two baselines; goal +0.10.

A second, three-times larger demo (the default one has too few churned accounts for a
fit) measures the fitted model out of fold against the written weights on the same rows.

The work is checked: each month's churned count is counted again in SQL, and each AUC
is recomputed with scikit-learn's `roc_auc_score` on the same rows.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from bench.common import manage_on, recreate_database

SCRIPT = """
import json
import numpy as np
from sklearn.metrics import roc_auc_score
from django.utils import timezone
from closeloop.insights import backtest, health
from closeloop.management import demo
from closeloop.surveys.models import Account

demo.seed(accounts={accounts}, people={people}, responses={responses})
now = timezone.now()
SURVEY = ("detractor_level", "passive_level", "no_answer", "falling", "silent", "silent_passive")
survey_weights = {{k: v for k, v in health.WEIGHTS.items() if k in SURVEY}}
months, rows = [], []
for at in backtest.moments(now):
    found = backtest.snapshot(at)
    end = at + backtest.HORIZON
    left = Account.objects.filter(health.live_at(at), churned_at__gt=at, churned_at__lte=end)
    assert sum(r.churned for r in found) == left.count()
    months.append(at.isoformat())
    rows += found
y = np.array([r.churned for r in rows])
written = backtest.risk_of(rows, health.WEIGHTS)
survey = backtest.risk_of(rows, survey_weights)
result = backtest.run(now)
by_nps = []
start = 0
for m in result.months:
    by_nps += list(backtest.nps_risk(rows[start:start + m.accounts]))
    start += m.accounts
out = dict(
    months=len(months),
    rows=len(rows),
    churned=int(len({{r.account_id for r in rows if r.churned}})),
    health=backtest.auc(written, y),
    nps=backtest.auc(by_nps, y),
    survey=backtest.auc(survey, y),
    gain_low=result.gain.low,
    gain_high=result.gain.high,
    health_low=result.health.low,
    health_high=result.health.high,
    fit_in_use=result.fit.in_use,
    fitted=result.fit.fitted_auc,
    fitted_written=result.fit.written_auc,
    why=result.fit.why,
)
assert abs(out["health"] - roc_auc_score(y, written)) < 1e-9
assert abs(out["nps"] - roc_auc_score(y, by_nps)) < 1e-9
assert abs(out["survey"] - roc_auc_score(y, survey)) < 1e-9
assert abs(out["health"] - result.health.auc) < 1e-9 or result.fit.in_use
print(json.dumps(out))
"""


def _demo(url: str, scale: int) -> dict[str, Any]:
    recreate_database(url)
    manage_on(url, "migrate", "--noinput", LOG_LEVEL="WARNING")
    script = SCRIPT.format(accounts=200 * scale, people=2000 * scale, responses=6000 * scale)
    out = manage_on(url, "shell", "-c", script, LOG_LEVEL="WARNING")
    return dict(json.loads(out.splitlines()[-1]))


def run(db_url: str) -> list[tuple[str, ...]]:
    url = urlparse(db_url)
    own = url._replace(path=url.path.rstrip("/") + "_backtest").geturl()
    found = _demo(own, 1)
    best = max(found["nps"], found["survey"])
    rows: list[tuple[str, ...]] = [
        (
            f"health backtest, demo ({found['months']} months, {found['churned']} churned)",
            f"AUC {found['health']:.3f} ({found['health_low']:.2f}–{found['health_high']:.2f})",
            f"NPS alone {found['nps']:.3f}, survey signals {found['survey']:.3f}",
            f"{found['health'] - best:+.3f} (vs NPS alone, 95% "
            f"{found['gain_low']:+.2f} to {found['gain_high']:+.2f})",
            "≥ best baseline + 0.10",
        )
    ]
    big = _demo(own, 3)
    if big["fitted"] is None:
        rows.append(("fitted health model, demo ×3", "not fitted", big["why"], "—", "≥ written"))
    else:
        rows.append(
            (
                f"fitted health model, demo ×3 ({big['churned']} churned), out of fold",
                f"AUC {big['fitted']:.3f}" + (" in use" if big["fit_in_use"] else " not used"),
                f"written weights {big['fitted_written']:.3f}",
                f"{big['fitted'] - big['fitted_written']:+.3f}",
                "≥ written",
            )
        )
    return rows
