"""Sentiment of comments and their sentences, measured on the human-rated snippets of the
vaderSentiment source distribution (fetched and trained on by `make install`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeloop.insights import sentiment as s


@pytest.fixture(scope="module")
def model() -> s.SentimentModel:
    return s.current_sentiment()


def test_it_splits_a_comment_into_sentences() -> None:
    assert s.sentences("Export is broken again! Otherwise lovely.\nThanks…  bye") == [
        "Export is broken again!",
        "Otherwise lovely.",
        "Thanks…",
        "bye",
    ]
    assert s.sentences("") == [] and s.sentences("🙂 ... !!") == []
    many = s.sentences(" ".join(f"Point {i}." for i in range(50)))
    assert len(many) == s.MAX_SENTENCES and many[-1].startswith("Point 19.")


def test_it_reads_the_sentiment_of_customer_comments(model: s.SentimentModel) -> None:
    found = model.analyse(
        [
            "Support never answered my ticket. Very frustrating.",
            "Great product, the team is lovely",
            "The export is broken again. Otherwise the team is lovely.",
        ]
    )
    assert found[0].overall.label == s.NEGATIVE and found[0].overall.score < -0.5
    assert found[1].overall.label == s.POSITIVE and found[1].overall.score > 0.5
    mixed = found[2]
    assert [x.label for _, x in mixed.sentences] == [s.NEGATIVE, s.POSITIVE]
    assert [text for text, _ in mixed.sentences] == [
        "The export is broken again.",
        "Otherwise the team is lovely.",
    ]


def test_it_handles_empty_emoticon_long_and_non_english_comments(model: s.SentimentModel) -> None:
    essay = "The renewal price is outrageous and nobody explained it. " * 300
    empty, frown, long, french = model.analyse(["", ":(", essay, "Ça marche pas du tout, nul"])
    assert empty.overall == s.Sentiment(s.NEUTRAL, 0.0) and empty.sentences == []
    assert frown.overall.label == s.NEGATIVE and frown.sentences == []
    assert long.overall.label == s.NEGATIVE and len(long.sentences) == s.MAX_SENTENCES
    assert french.overall.label in s.LABELS and -1 <= french.overall.score <= 1


def test_it_measures_itself_on_rated_snippets_it_never_saw(model: s.SentimentModel) -> None:
    snippets = s.load_corpus()
    training, held_out = s.split(snippets)
    assert len(snippets) > 20_000 and not {x.text for x in training} & {x.text for x in held_out}
    closest = [x for x in held_out if x.corpus in s.CLOSEST]
    rows = {a.corpus: a for a in s.evaluate(model, closest)}
    both = rows[" + ".join(s.CLOSEST)]
    assert both.n == len(closest) > 1500
    # The goal (0.80) is tracked by `make bench`; this guards against a broken model.
    assert both.accuracy > 0.7


def test_it_removes_the_models_of_older_versions(tmp_path: Path) -> None:
    keep = tmp_path / s.VERSION
    (keep / "inner").mkdir(parents=True)
    (tmp_path / "sent-minilm-vader-lr-1.joblib").write_bytes(b"old")
    (tmp_path / "sent-older-folder").mkdir()
    (tmp_path / "vader-corpus").mkdir()
    s.remove_older(keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([s.VERSION, "vader-corpus"])
    assert (keep / "inner").is_dir()
