"""all-MiniLM-L6-v2 run by ONNX Runtime with int8 weights: the encoder both readers use
(the theme classifier's frozen copy, the sentiment model's tuned one). The worker's whole
reading pass runs about 2.7× as many comments per second as the same models in torch on
2 cores (`make bench` part 7; docs/themes.md).

The model is exported from its transformers folder to ONNX (`torch.onnx.export`) and its
weights are quantised to int8 (`onnxruntime.quantization.quantize_dynamic`: int8 weights,
each run's activations quantised as it runs). The export takes a few seconds and is
done once per model: at install for the frozen encoder (`prepare_models`), after tuning
for the sentiment model, and by the first process that needs a file that is missing
(`load`). The vectors differ a little from torch's (cosine 0.99 on average over the
theme examples); the classifiers are trained and measured on these vectors.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import model_files

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FILE = "encoder-int8.onnx"


def _threads() -> int:
    """As torch's reader: the machines this runs on have two cores."""
    return max(1, min(2, os.cpu_count() or 1))


def build(source: Path, out: Path) -> None:
    """Export the transformers model in `source` and quantise it into `out`, whole or not
    at all; one process at a time per file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    with model_files.exclusive(out.with_name(out.name + ".lock"), wait=True):
        if out.exists():  # another process built it while this one waited
            return
        model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in INPUTS)
        axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")}
        with tempfile.TemporaryDirectory() as tmp:
            plain, small = Path(tmp) / "encoder.onnx", Path(tmp) / FILE
            with warnings.catch_warnings(), torch.inference_mode():
                # The TorchScript exporter is deprecated in favour of one that needs
                # onnxscript; it still exports this model exactly.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Hidden(),
                    example,
                    str(plain),
                    input_names=list(INPUTS),
                    output_names=["hidden"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            logging.disable(logging.WARNING)  # a line per tensor it leaves in float, and advice
            try:
                # Per output channel: each row of a weight matrix gets its own scale
                # (cosine to torch's vectors 0.99 on average, 0.96 with one per matrix).
                quantize_dynamic(plain, small, weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.disable(logging.NOTSET)
            model_files.write_atomically(out, small.read_bytes())


def load(source: Path, out: Path, max_tokens: int) -> Encoder:
    """The quantised encoder of the transformers model in `source`, exported into `out`
    first if it is not there yet."""
    if not out.exists():
        build(source, out)
    return Encoder(out, source, max_tokens)


class Encoder:
    """The quantised model in `path` and its tokenizer: mean-pooled token vectors.

    Each text is read alone, on one thread, as many at once as there are cores. Alone,
    because the int8 activations' scale is set per run: read in a batch, a text's vector
    would depend on its neighbours (cosine down to 0.95 between batches of 4 and of 1). And
    on 2 cores single texts, two at a time, read more per second (about 920 short comments/s)
    than batches of 32 sorted by length (540/s) or one batch at a time on two threads."""

    def __init__(self, path: Path, model_dir: Path, max_tokens: int) -> None:
        """`path`: the quantised model; `model_dir`: the folder it was exported from,
        whose `tokenizer.json` is read with the `tokenizers` library itself (the same word
        pieces as transformers' tokenizer, without importing transformers and torch);
        `max_tokens`: the word pieces read of a text."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about the export's shapes are not news
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.size = self.session.get_outputs()[0].shape[-1]  # of a token's vector
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self._lock = threading.Lock()  # one caller at a time uses the cores

    def _pooled(self, piece: list[int]) -> Any:
        """The mean of one text's token vectors, from its word-piece ids."""
        import numpy as np

        ids = np.array([piece], dtype=np.int64)
        ones = np.ones_like(ids)
        feed = {"input_ids": ids, "attention_mask": ones, "token_type_ids": ones - 1}
        (hidden,) = self.session.run(None, feed)
        return hidden[0].mean(0)

    def pooled(self, texts: Sequence[str]) -> Any:
        """The mean of each text's token vectors, one row per text."""
        import numpy as np

        found = np.zeros((len(texts), self.size), dtype=np.float32)
        if not texts:
            return found
        with self._lock:
            pieces = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
            for row, vector in enumerate(_pool().map(self._pooled, pieces)):
                found[row] = vector
        return found


_pool_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _pool_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(_threads(), thread_name_prefix="encoder")
        return _executor
