"""Theme classifier evaluation: per-theme precision/recall/F1 and macro-F1 on the
held-out quarter of the shipped examples (never used in training); sentiment accuracy on
the held-out quarter of the vaderSentiment corpus's human-rated snippets; classification
throughput on 2 cores, and the models' load times."""

from __future__ import annotations

import time

from closeloop.insights import classifier as c
from closeloop.insights import sentiment

THROUGHPUT_COMMENTS = 2000


def run() -> list[tuple[str, ...]]:
    examples = c.load_examples()
    training, held_out = c.split(examples)
    started = time.perf_counter()
    model = c.train(training)
    trained_in = time.perf_counter() - started
    scores = c.evaluate(model, held_out)
    rows: list[tuple[str, ...]] = [
        (
            f"themes: held-out {len(held_out)} of {len(examples)} examples "
            f"(trained on {len(training)} in {trained_in:.1f} s)",
            "",
            "",
            "",
            "",
        )
    ]
    for s in scores:
        rows.append(
            (
                f"  {s.theme} P / R / F1 (n {s.support})",
                f"{s.precision:.2f} / {s.recall:.2f} / {s.f1:.2f}",
                "",
                "",
                "",
            )
        )
    rows.append(("  macro-F1", f"{c.macro_f1(scores):.3f}", "", "", "≥ 0.85"))
    feeling = sentiment.current_sentiment()
    _, rated = sentiment.split(sentiment.load_corpus())
    rows.append((f"sentiment: held-out {len(rated)} human-rated snippets", "", "", "", ""))
    for a in sentiment.evaluate(feeling, rated):
        goal = "≥ 0.80" if a.corpus == " + ".join(sentiment.CLOSEST) else ""
        rows.append((f"  accuracy, {a.corpus} (n {a.n})", f"{a.accuracy:.3f}", "", "", goal))
    texts = [e.text for e in examples] * (THROUGHPUT_COMMENTS // len(examples) + 1)
    texts = texts[:THROUGHPUT_COMMENTS]
    started = time.perf_counter()
    model.predict(texts)
    rate = len(texts) / (time.perf_counter() - started)
    rows.append(("classification (themes), 2 cores", f"{rate:,.0f} comments/s", "", "", "≥ 300/s"))
    started = time.perf_counter()
    vectors = c.embed([c.clean(t) for t in texts])
    model.predict(texts, vectors)
    feeling.analyse(texts, vectors)
    rate = len(texts) / (time.perf_counter() - started)
    rows.append(
        ("themes + sentiment of comment and sentences", f"{rate:,.0f} comments/s", "", "", "—")
    )
    rows.append(("embedding model load", f"{c.LOAD_SECONDS or 0:.1f} s", "", "", "—"))
    rows.append(("sentiment model load", f"{sentiment.LOAD_SECONDS or 0:.1f} s", "", "", "—"))
    return rows
