"""The Hugging Face Hub side of loading: metadata without weights, and its errors as clear LoadErrors.

`member_facts` reads config.json and the safetensors header (a few KB; `get_safetensors_metadata` for Hub ids,
the local header otherwise), so placement can refuse a set that does not fit before anything is downloaded.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from ..config import MemberSpec
from ..errors import LoadError
from .memory import ModelFacts, facts_from_config

NOT_SUPPORTED = ("does not recognize this architecture", "Unrecognized configuration class", "Unrecognized model")


def member_facts(spec: MemberSpec, where: str, extra: dict) -> ModelFacts:
    """`where`, `extra`: from locate.locate. Raises LoadError (translated) when the Hub says no."""
    from transformers import AutoConfig

    if (Path(where) / "compose.json").is_file():
        return composition_facts(spec, where)
    try:
        config = AutoConfig.from_pretrained(where, trust_remote_code=spec.trust_remote_code, **extra)
        counts = (local_parameter_count(Path(where)) if Path(where).is_dir()
                  else hub_parameter_count(where, extra.get("token")))
        return facts_from_config(config, counts, spec.trust_remote_code)
    except Exception as e:
        raise translate(e, spec.model) from e


def composition_facts(spec: MemberSpec, where: str) -> ModelFacts:
    """A CALM folder: the anchor's shape (its KV cache is the one that grows) with every frozen member's
    weights; the composition's own few parameters are left out."""
    from ..compose.store import member_refs
    from .locate import locate

    parts = [member_facts(dataclasses.replace(spec, model=ref), *locate(ref)) for ref in member_refs(where)]
    total = {k: sum(getattr(f, k) for f in parts) for k in ("params", "linear_params", "linear_rows", "linear_layers")}
    return dataclasses.replace(parts[0], **total)


def local_parameter_count(folder: Path) -> dict[str, int]:
    """Parameters per safetensors dtype in a local folder, from the file headers only."""
    from safetensors import safe_open

    counts: Counter = Counter()
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, "pt") as f:
            for name in f.keys():
                part = f.get_slice(name)
                n = 1
                for d in part.get_shape():
                    n *= d
                counts[part.get_dtype()] += n
    return dict(counts)


def hub_parameter_count(repo: str, token: bool | str | None = None) -> dict[str, int] | None:
    from huggingface_hub import get_safetensors_metadata
    from huggingface_hub.errors import NotASafetensorsRepoError

    try:
        return dict(get_safetensors_metadata(repo, token=token).parameter_count)
    except NotASafetensorsRepoError:
        return None  # .bin weights: fall back to config.json's dtype


def causes(e: BaseException):
    """`e` and every exception it was raised from or during, once each (transformers wraps Hub errors in
    OSError)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def translate(e: BaseException, model: str) -> LoadError:
    """Any exception from the Hub client or from_pretrained -> one LoadError line that says what to do."""
    from huggingface_hub import errors as hub

    if isinstance(e, LoadError):
        return e
    chain = list(causes(e))
    first = f"could not load {model!r}: "
    text = " ".join(str(c) for c in chain)
    if any(isinstance(c, hub.GatedRepoError) for c in chain):
        return LoadError(first + f"it is a gated repo. Accept its terms on https://huggingface.co/{model} and log in "
                         "(`hf auth login`) or set HF_TOKEN")
    if any(isinstance(c, hub.RepositoryNotFoundError) for c in chain):
        return LoadError(first + "no such model on the Hugging Face Hub (check the owner/name spelling; a private "
                         "repo needs `hf auth login` or HF_TOKEN)")
    if "trust_remote_code=True" in text:
        return LoadError(first + "it runs its own Python code from the repo, which is off unless you ask: set "
                         "`trust_remote_code: true` on this member (only for repos you trust)")
    if any(s in text for s in NOT_SUPPORTED):
        return LoadError(first + "its architecture is not supported by this transformers version "
                         "(pip install -U transformers, or pick another model)")
    if any(offline(c) for c in chain):
        return LoadError(first + "cannot reach the Hugging Face Hub and the model is not in the local cache: check "
                         "the network (and that HF_HUB_OFFLINE is not set), or give a local folder")
    if any(isinstance(c, hub.EntryNotFoundError) for c in chain):
        return LoadError(first + "the repo lacks a file transformers needs (config.json or weights): is it a "
                         "transformers causal LM?")
    return LoadError(first + (str(e).splitlines() or [type(e).__name__])[0])


def offline(e: BaseException) -> bool:
    from huggingface_hub import errors as hub

    if isinstance(e, hub.LocalEntryNotFoundError | hub.OfflineModeIsEnabled | ConnectionError | TimeoutError):
        return True
    return type(e).__module__.startswith(("httpx", "httpcore", "requests", "urllib3")) and (
        "Connect" in type(e).__name__ or "Timeout" in type(e).__name__)
