"""The example placement plans of docs/placement.md, computed from the Hub metadata in tests/data/hub/.

    python bench/placement.py            # print the generated section
    python bench/placement.py --write    # rewrite it in docs/placement.md (between the plan markers)

tests/test_placement.py checks that the document holds exactly this output, so it cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import AutoConfig  # noqa: E402

from ensemble.errors import LoadError  # noqa: E402
from ensemble.models.memory import estimate, facts_from_config  # noqa: E402
from ensemble.models.placement import GIB, Need, describe, gb, plan  # noqa: E402
from ensemble.models.quantize import candidates  # noqa: E402

HUB = ROOT / "tests" / "data" / "hub"
DOC = ROOT / "docs" / "placement.md"
MEMBERS = ("qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3")
GPUS = {"1×24 GiB": [24 * GIB], "2×24 GiB": [24 * GIB] * 2, "1×80 GiB": [80 * GIB], "2×16 GiB": [16 * GIB] * 2}
CONTEXT = 4096
FORMATS = ("bf16", "8bit", "4bit")
BEGIN, END = "<!-- plan:begin (python bench/placement.py --write) -->", "<!-- plan:end -->"


def member_facts():
    out = {}
    for name in MEMBERS:
        record = json.loads((HUB / f"{name}.json").read_text())
        config = dict(record["config"])
        config = AutoConfig.for_model(config.pop("model_type"), **config)
        out[record["repo"]] = facts_from_config(config, record["parameter_count"])
    return out


def render() -> str:
    facts = member_facts()
    lines = [BEGIN, "", f"Estimates at a context of {CONTEXT} tokens (3 KV caches per member, +10% headroom):", "",
             "| member | params | format | weights | KV cache | activations | total |", "|---|---|---|---|---|---|---|"]
    for repo, f in facts.items():
        for d in FORMATS:
            e = estimate(f, d, CONTEXT)
            lines.append(f"| {repo} | {f.params / 1e9:.2f}B | {d} | {gb(e.weights)} | {gb(e.kv_cache)} | "
                         f"{gb(e.activations)} | {gb(e.total)} |")
    for dtype in ("auto", "bf16"):
        needs = [Need(i, repo.split("/")[1], {d: estimate(f, d, CONTEXT).total for d in FORMATS},
                      candidates(dtype, f.checkpoint)) for i, (repo, f) in enumerate(facts.items())]
        for label, free in GPUS.items():
            lines += ["", f"**{label}, dtype `{dtype}`**", ""]
            try:
                p = plan(needs, free)
            except LoadError as e:
                lines.append(f"> LoadError: {e}")
                continue
            lines += [f"- {line}" for line in describe(p)]
            lines.append(f"- free after the plan: {', '.join(gb(b) for b in p.left)}")
    return "\n".join([*lines, "", END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the section in {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    text = render()
    if not args.write:
        print(text)
        return
    doc = DOC.read_text()
    DOC.write_text(doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):])


if __name__ == "__main__":
    main()
