"""What a served member costs per fused step, and what the server's top-k cap does to UniTE, in one run.

    python bench/remote.py              # a few prompts, few tokens: CPU is shared; then rewrites docs/remote.md's table

One llama.cpp server (scripts/llama-server.sh, SmolLM2-135M GGUF on loopback) against the same model loaded
here, each fused with Gemma-3-270M loaded here (UniTE, k = 20, greedy):
- step: fused ms per step with SmolLM2 served vs local; the served member's mean call (member_ms) against
  the server's own decode step on the same prompt (`timings.predicted_per_token_ms` of a plain completion);
- agreement: the fused answers with the server's top-20 against SmolLM2's top-20 computed here (full
  distribution, as for a local member) and against the local top-20 truncated the way a served member is
  (zeros outside it), so the cap's own effect is apart from GGUF-vs-bf16 numerics.
Raw rows go to bench/results/remote.jsonl (one per run and variant); the table in docs/remote.md is generated.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.decode import member as local_member  # noqa: E402
from ensemble.decode.engine import Ensemble  # noqa: E402
from ensemble.decode.events import Finished  # noqa: E402
from ensemble.decode.prompting import prompt_ids  # noqa: E402
from ensemble.models.pool import load_models  # noqa: E402
from tests.llama_server import NAME, LlamaServer  # noqa: E402

OUT = ROOT / "bench" / "results" / "remote.jsonl"
DOC = ROOT / "docs" / "remote.md"
PROMPTS = ("Name three colours of the rainbow.", "Write one sentence about the sea.",
           "What is 12 times 7? Answer briefly.", "Give a synonym for 'happy'.")
K = 20


def run(models, messages, n: int) -> Finished:
    config = EnsembleConfig(members=tuple(m.spec for m in models), method="unite", options={"top_k": K},
                            sampling=SamplingConfig(max_new_tokens=n))
    events = list(Ensemble(models, config).stream(messages))
    return next(e for e in events if isinstance(e, Finished))


class Truncated:
    """forward_all with member 0's distribution cut to its top-K, zeros elsewhere (what a server gives)."""

    def __init__(self):
        self.original = local_member.forward_all

    def __enter__(self):
        def cut(members, needed):
            probs = self.original(members, needed)
            if probs[0] is not None:
                top = probs[0].topk(K)
                probs[0] = torch.zeros_like(probs[0]).index_put_((top.indices,), top.values)
            return probs
        from ensemble.decode import backend
        backend.forward_local = cut
        return self

    def __exit__(self, *exc):
        from ensemble.decode import backend
        backend.forward_local = self.original


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def own_step_ms(server: LlamaServer, tokenizer, messages, n: int) -> float:
    prompt = prompt_ids(tokenizer, messages)
    reply = httpx.post(server.url + "/completion", timeout=120, json={
        "prompt": prompt, "n_predict": n, "temperature": 0, "cache_prompt": False, "ignore_eos": True}).json()
    return float(reply["timings"]["predicted_per_token_ms"])


def measure(n: int, prompts) -> list[dict]:
    with LlamaServer() as server:
        served_spec = MemberSpec(server.url, tokenizer=f"offline:{NAME}", name="smollm2 (served)")
        remote, smol, gemma = load_models([served_spec, MemberSpec(f"offline:{NAME}", dtype="fp32"),
                                           MemberSpec("offline:gemma-3-270m", dtype="fp32")])
        rows = []
        for text in prompts:
            messages = [{"role": "user", "content": text}]
            run([remote, gemma], messages, 2)  # warm both paths (server cache, first-token tables)
            served = run([remote, gemma], messages, n)
            local = run([smol, gemma], messages, n)
            with Truncated():
                cut = run([smol, gemma], messages, n)
            rows.append({
                "prompt": text, "tokens": n,
                "served_ms_per_step": served.stats.ms_per_step, "local_ms_per_step": local.stats.ms_per_step,
                "served_member_ms": served.stats.member_ms[0], "local_member_ms": local.stats.member_ms[0],
                "server_own_step_ms": own_step_ms(server, remote.tokenizer, messages, n),
                "same_as_local": served.text == local.text, "same_as_truncated": served.text == cut.text,
                "truncated_same_as_local": cut.text == local.text,
                "prefix_vs_local": common_prefix(served.text, local.text) / max(len(local.text), 1),
                "served_text": served.text, "local_text": local.text, "truncated_text": cut.text,
            })
    return rows


def table(rows: list[dict]) -> str:
    def mean(key):
        return sum(r[key] for r in rows) / len(rows)

    n = len(rows)
    lines = [
        f"Mean over {n} prompts, {rows[0]['tokens']} tokens each (`python bench/remote.py`, "
        f"{rows[0].get('machine', '')}):", "",
        "| | ms |", "|---|---|",
        f"| fused step, SmolLM2 served + Gemma local | {mean('served_ms_per_step'):.1f} |",
        f"| fused step, SmolLM2 local + Gemma local | {mean('local_ms_per_step'):.1f} |",
        f"| SmolLM2's call to the server (per step) | {mean('served_member_ms'):.1f} |",
        f"| SmolLM2's forward here (per step) | {mean('local_member_ms'):.1f} |",
        f"| the server's own decode step | {mean('server_own_step_ms'):.1f} |",
        f"| added per step by serving (call − own step) | "
        f"{mean('served_member_ms') - mean('server_own_step_ms'):.1f} |", "",
        "| UniTE k = 20 | answers equal |", "|---|---|",
        f"| server top-20 vs local full distribution | {sum(r['same_as_local'] for r in rows)}/{n} |",
        f"| server top-20 vs local top-20 (cut like a server's) | {sum(r['same_as_truncated'] for r in rows)}/{n} |",
        f"| local top-20 truncated vs local full | {sum(r['truncated_same_as_local'] for r in rows)}/{n} |",
        f"| mean shared prefix, server vs local (fraction of the local answer) | {mean('prefix_vs_local'):.2f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--table-only", action="store_true", help="regenerate docs/remote.md from the last run")
    args = parser.parse_args()
    if not args.table_only:
        torch.set_num_threads(1)  # the server has its own threads; CPU is shared
        rows = measure(args.tokens, PROMPTS[: args.prompts])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        machine = f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), CPU only"
        with OUT.open("a") as f:
            for r in rows:
                f.write(json.dumps({"run": stamp, "machine": machine, **r}) + "\n")
    rows = [json.loads(line) for line in OUT.read_text().splitlines() if line.strip()]
    last = [r for r in rows if r["run"] == rows[-1]["run"]]
    doc = DOC.read_text()
    begin, end = doc.index("<!-- table:begin -->"), doc.index("<!-- table:end -->")
    DOC.write_text(doc[:begin] + "<!-- table:begin -->\n" + table(last) + "\n" + doc[end:])
    print(table(last))


if __name__ == "__main__":
    main()
