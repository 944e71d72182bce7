"""Making the sentiment models: the human-rated corpus, fitting the interim model, tuning
the encoder (with checkpoints, resumable), and checking a model on held-out sentences.
The background tuning (`tuning`) runs `python -m closeloop.themes.sentiment_training`;
`--fit-interim` rebuilds the interim model shipped in data/."""

from __future__ import annotations

import io
import json
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

from . import classifier, model_files, sentiment
from .sentiment import (
    INTERIM_VERSION,
    LABELS,
    LEXICON_FEATURES,
    VERSION,
    InterimModel,
    Reader,
    SentimentModel,
    Snippet,
    base_encoder,
    interim_features,
    save,
)

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
# What accuracy is reported on: each corpus, the closest two together, and all four.
GROUPS: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in CORPUS_FILES},
    " + ".join(CLOSEST): CLOSEST,
    "all four": tuple(CORPUS_FILES),
}

# Tuning: two passes over the training snippets in batches of 32, the encoder at a small
# learning rate, the new head at a larger one. Chosen on a slice of the training part
# (the held-out quarter plays no part): see docs/themes.md.
EPOCHS = 2.0
BATCH_TRAIN = 32
TUNE_RATE = 5e-5
HEAD_RATE = 1e-3
SEED = 0
CHECKPOINT_STEPS = 100  # tuning saves its whole state this often (about a minute)


def fetch_corpus(dest: Path = sentiment.CORPUS_DIR) -> Path:
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


def load_corpus(directory: Path = sentiment.CORPUS_DIR) -> list[Snippet]:
    """Every rated snippet: `id<TAB>mean rating<TAB>text` per line."""
    snippets = []
    for corpus, name in CORPUS_FILES.items():
        raw = (directory / name).read_bytes().decode("utf-8", errors="replace")
        for line in raw.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                source = parts[0].split("_")[0]  # "12_3": the 3rd snippet of review 12
                snippets.append(Snippet(corpus, parts[2].strip(), float(parts[1]), source))
    return snippets


def split(snippets: Sequence[Snippet]) -> tuple[list[Snippet], list[Snippet]]:
    """(training snippets, held-out snippets): held out by source, so no review or
    editorial has snippets on both sides."""
    return [s for s in snippets if not s.held_out], [s for s in snippets if s.held_out]


# The measurement set (bench, docs/themes.md): the held-out snippets with no near-copy
# in training (`classifier.near_copies`: the corpus holds the same tweet again with other
# capitals and exclamation marks, and short snippets such as "i love it!" recur across
# reviews), frozen in FROZEN by corpus and fingerprint. Never tuned on: design choices
# are made on folds of the training part.
FROZEN = sentiment.INTERIM_FILE.parent / "sentiment_held_out.txt"


def _frozen_key(s: Snippet) -> str:
    return f"{s.corpus}\t{classifier.fingerprint(s.text)}"


def frozen_held_out(snippets: Sequence[Snippet]) -> list[Snippet]:
    """The held-out snippets named in FROZEN, each once."""
    names = classifier.frozen_names(FROZEN)
    chosen, seen = [], set()
    for s in snippets:
        key = _frozen_key(s)
        if s.held_out and key in names and key not in seen:
            chosen.append(s)
            seen.add(key)
    return chosen


def freeze_held_out(snippets: Sequence[Snippet]) -> list[Snippet]:
    """Write FROZEN: the held-out snippets without a near-copy in training (done once;
    `--freeze-held-out`)."""
    training, held_out = split(snippets)
    copies = classifier.near_copies([s.text for s in held_out], [s.text for s in training])
    kept = {_frozen_key(s) for s in held_out if s.text not in copies}
    FROZEN.write_text("".join(f"{key}\n" for key in sorted(kept)))
    return frozen_held_out(snippets)


def fit_interim(snippets: Sequence[Snippet]) -> InterimModel:
    """Fit the interim reader on rated training snippets (the closest corpora count
    double): `python -m closeloop.themes.sentiment_training --fit-interim` rewrites its file."""
    from sklearn.linear_model import LogisticRegression

    texts = [classifier.clean(s.text) for s in snippets]
    kept = [(t, s) for t, s in zip(texts, snippets, strict=True) if classifier.has_words(t)]
    features = interim_features([t for t, _ in kept])
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
    (path or sentiment.INTERIM_FILE).write_text(json.dumps(rows) + "\n")


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
    encoder, tokenizer = base_encoder()
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

    rows = []
    for name, members in GROUPS.items():
        chosen = [r for r, s in zip(right, held_out, strict=True) if s.corpus in members]
        rows.append(Accuracy(name, sum(chosen) / len(chosen) if chosen else 0.0, len(chosen)))
    return rows


def _write_status(**fields: Any) -> None:
    fields["at"] = time.time()
    model_files.write_atomically(sentiment.STATUS, json.dumps(fields).encode())


def build(
    path: Path | None = None, log: Any = None, stop: Callable[[], bool] | None = None
) -> SentimentModel:
    """Fetch the corpus, tune on its training part (resuming from the checkpoint of an
    interrupted run) and write the model to `path`. Callers hold sentiment.LOCK (see `tune`)."""
    import shutil

    _write_status(state="fetching", step=0, steps=0)
    training, _ = split(load_corpus(fetch_corpus()))

    written: list[int] = []

    def progress(step: int, steps: int) -> None:
        if step % 10 == 0 or step == steps or not written:  # the first: where it resumed
            _write_status(state="tuning", step=step, steps=steps)
            written.append(step)

    model = train(training, log=log, checkpoint=sentiment.CHECKPOINT, stop=stop, progress=progress)
    path = path or sentiment.MODEL_PATH
    save(model, path)
    remove_older(path)
    shutil.rmtree(sentiment.TUNING_DIR, ignore_errors=True)
    return model


def tune(log: Any = None, stop: Callable[[], bool] | None = None, *, wait: bool) -> bool:
    """Build the tuned model unless it is there, holding sentiment.LOCK: with `wait=False` another
    process's tuning makes this return False at once; with `wait=True` this waits for it
    (and then finds the model). A failure is kept in the status for the pages, and
    raised. True when this call built the model."""
    with model_files.exclusive(sentiment.LOCK, wait=wait) as got:
        if not got or sentiment.MODEL_PATH.exists():
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
        if old.name not in (keep.name, sentiment.TUNING_DIR.name, sentiment.LOCK.name):
            shutil.rmtree(old) if old.is_dir() else old.unlink()


def tuned() -> Reader:
    """The tuned model as the worker reads with it, built here first if need be (waiting
    for another process that is tuning it): for measurements (`make bench`), never for a
    request."""
    tune(log=lambda line: print(line, flush=True), wait=True)
    sentiment.look_again()  # now, not in RECHECK_SECONDS
    reader = sentiment.current_sentiment()
    assert not reader.interim
    return reader


if __name__ == "__main__" and sys.argv[1:] == ["--freeze-held-out"]:
    frozen = freeze_held_out(load_corpus(fetch_corpus()))
    print(f"sentiment: {len(frozen)} held-out snippets frozen in {FROZEN}")
    sys.exit(0)


if __name__ == "__main__" and sys.argv[1:] == ["--fit-interim"]:
    save_interim(fit_interim(split(load_corpus(fetch_corpus()))[0]))
    print(f"sentiment: interim model written to {sentiment.INTERIM_FILE}")
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
        took = time.perf_counter() - began
        print(f"sentiment model: tuned into {sentiment.MODEL_PATH} in {took:.0f} s")
    sys.exit(0 if sentiment.MODEL_PATH.exists() else 3)
