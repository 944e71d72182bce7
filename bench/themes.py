"""Theme classifier evaluation: per-theme precision/recall/F1 and macro-F1 on the frozen
held-out part of the shipped examples (never used in training, none with a near-copy in
training: `classifier.FROZEN`), against the same classifier without its embeddings;
sentiment accuracy on the held-out quarter of the vaderSentiment corpus's human-rated
snippets; classification
throughput on 2 cores, and the models' load times."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from closeloop.themes import classifier as c
from closeloop.themes import sentiment
from closeloop.themes import sentiment_training as st

THROUGHPUT_COMMENTS = 2000


class NGramsOnly(c.ThemeClassifier):
    """The baseline at its best: the product's classifier without the sentence embeddings,
    so word and character n-grams, the same regression, and thresholds tuned the same way
    on folds of the training examples (`c.train(..., kind=NGramsOnly)`)."""

    def _features(self, texts: Sequence[str], embeddings: Any = None) -> Any:
        from scipy.sparse import hstack

        return hstack([self.words.transform(texts), self.chars.transform(texts)]).tocsr()


def _vader_accuracy(rated: list[sentiment.Snippet]) -> dict[str, float]:
    """VADER alone (its compound score, ±0.05 as its authors cut it) per corpus group."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()

    def label(text: str) -> str:
        compound = vader.polarity_scores(text)["compound"]
        if compound >= sentiment.LEXICON_POLAR:
            return sentiment.POSITIVE
        return sentiment.NEGATIVE if compound <= -sentiment.LEXICON_POLAR else sentiment.NEUTRAL

    right = [(s, label(s.text) == s.label) for s in rated]
    groups = {name: [name] for name in st.CORPUS_FILES}
    groups[" + ".join(st.CLOSEST)] = list(st.CLOSEST)
    groups["all four"] = list(st.CORPUS_FILES)
    return {
        name: sum(ok for s, ok in right if s.corpus in members)
        / max(1, sum(1 for s, _ in right if s.corpus in members))
        for name, members in groups.items()
    }


def _ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}×" if base else "—"


def run() -> list[tuple[str, ...]]:
    examples = c.load_examples()
    training, leaky = c.split(examples)
    held_out = c.frozen_held_out(examples)
    assert not c.near_copies(held_out, training), "a held-out example has a copy in training"
    started = time.perf_counter()
    model = c.train(training)
    trained_in = time.perf_counter() - started
    scores = c.evaluate(model, held_out)
    base_scores = c.evaluate(c.train(training, kind=NGramsOnly), held_out)
    rows: list[tuple[str, ...]] = [
        (
            f"themes: frozen held-out {len(held_out)} of {len(examples)} examples, no near-copy "
            f"in training ({len(leaky) - len(held_out)} left out); trained on {len(training)} "
            f"in {trained_in:.1f} s; baseline: word + character n-grams, tuned thresholds",
            "",
            "",
            "",
            "",
        )
    ]
    for s, b in zip(scores, base_scores, strict=True):
        rows.append(
            (
                f"  {s.theme} P / R / F1 (n {s.support})",
                f"{s.precision:.2f} / {s.recall:.2f} / {s.f1:.2f}",
                f"F1 {b.f1:.2f}",
                _ratio(s.f1, b.f1),
                "",
            )
        )
    ours, base = c.macro_f1(scores), c.macro_f1(base_scores)
    rows.append(("  macro-F1", f"{ours:.3f}", f"{base:.3f}", _ratio(ours, base), "≥ 0.88"))
    # The tuned model (built here, in the foreground, if no worker has tuned it yet).
    feeling = st.tuned()
    _, rated = st.split(st.load_corpus())
    vader = _vader_accuracy(rated)
    rows.append(
        (
            f"sentiment: held-out {len(rated)} human-rated snippets; baseline: VADER alone",
            "",
            "",
            "",
            "",
        )
    )
    for a in st.evaluate(feeling, rated):
        goal = "≥ 0.80" if a.corpus == " + ".join(st.CLOSEST) else ""
        rows.append(
            (
                f"  accuracy, {a.corpus} (n {a.n})",
                f"{a.accuracy:.3f}",
                f"{vader[a.corpus]:.3f}",
                _ratio(a.accuracy, vader[a.corpus]),
                goal,
            )
        )
    closest = " + ".join(st.CLOSEST)
    interim = {a.corpus: a for a in st.evaluate(sentiment.InterimModel.shipped(), rated)}
    rows.append(
        (
            f"  interim model (until the tuning is done), {closest}",
            f"{interim[closest].accuracy:.3f}",
            f"{vader[closest]:.3f}",
            _ratio(interim[closest].accuracy, vader[closest]),
            "—",
        )
    )
    # Distinct comments: the same text twice is embedded once.
    texts = [f"{examples[i % len(examples)].text} ({i})" for i in range(THROUGHPUT_COMMENTS)]
    started = time.perf_counter()
    c.embed([c.clean(t) for t in texts])
    embed_rate = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    model.predict(texts)
    rate = len(texts) / (time.perf_counter() - started)
    rows.append(
        (
            "classification (themes), 2 cores; baseline: the embedding alone",
            f"{rate:,.0f} comments/s",
            f"{embed_rate:,.0f}/s",
            _ratio(rate, embed_rate),
            "≥ 300/s",
        )
    )
    started = time.perf_counter()
    vectors = c.embed([c.clean(t) for t in texts])
    model.predict(texts, vectors)
    feeling.analyse(texts, vectors)
    rate = len(texts) / (time.perf_counter() - started)
    rows.append(
        (
            "themes + sentiment of comment and sentences (the worker's pass)",
            f"{rate:,.0f} comments/s",
            f"{embed_rate:,.0f}/s",
            _ratio(rate, embed_rate),
            "—",
        )
    )
    rows.append(("embedding model load", f"{c.LOAD_SECONDS or 0:.1f} s", "", "", "—"))
    rows.append(("sentiment model load", f"{sentiment.LOAD_SECONDS or 0:.1f} s", "", "", "—"))
    return rows
