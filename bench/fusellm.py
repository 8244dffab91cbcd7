"""FuseLLM on CPU: the fused target against the same-data CLM-only control (docs/bench-fusellm.md).

    python bench/fusellm.py run --minutes 8         # the whole acceptance run, resumable (exit 75: run again)
    python bench/fusellm.py map-speed               # vocabulary map: bucketed MinED vs the naive search
    python bench/fusellm.py qa --models M1 M2 ...   # qa_wikidata accuracy of each model, resumable
    python bench/fusellm.py report                  # rewrite docs/bench-fusellm.md from the saved results

qa reuses bench/qa_wikidata.py's sample, few-shot prefix and scoring, and the engine's plain-completion
prompt; answers are greedy, batched with left padding, at most 8 tokens, cut at a newline or a period.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from qa_wikidata import gold, hit, load_task  # noqa: E402

from ensemble.decode.prompting import prompt_ids  # noqa: E402
from ensemble.fusellm import corpus, pipeline, vocabmap  # noqa: E402
from ensemble.fusellm.train import TrainConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "runs" / "fusellm"
BATCH = 16
MAX_NEW = 8
HELD_OUT_BLOCKS = 24
BLOCK_CHARS = 512
SEEDS = (0, 1)
RULE = "mince"


def run_names() -> list[tuple[str, TrainConfig]]:
    return [(f"{kind}-s{seed}", TrainConfig(lam=lam, seed=seed))
            for seed in SEEDS for kind, lam in ((f"fused-{RULE}", 0.9), ("control", 1.0))]


def run_all(work: Path, train_blocks: int, deadline: float) -> bool:
    """Every stage in order, each skipped when its output exists; False when the deadline stopped it."""
    config = pipeline.FuseLLMConfig(corpus=corpus.CorpusConfig(BLOCK_CHARS, train_blocks, HELD_OUT_BLOCKS))
    pipeline.check_config(work, config)
    if not pipeline.run_prepare(work, config, deadline):
        return False
    if not (work / "maps.json").exists():
        pipeline.run_map(work, config)
    if not (work / f"fused-{RULE}.json").exists():
        pipeline.run_fuse(work, config, RULE)
    models = [config.target]
    for name, tcfg in run_names():  # seed by seed, so the first seed's numbers come first
        folder = pipeline.run_train(work, config, tcfg, RULE, name, deadline)
        if folder is None:
            return False
        models.append(str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder))
        if name.startswith("control") and not pipeline.run_eval(work, config, models, deadline):
            return False
    if not qa(models, 300, RESULTS / "fusellm-qa.jsonl", deadline):
        return False
    if not (RESULTS / "fusellm-map-speed.jsonl").exists():
        map_speed(work, RESULTS / "fusellm-map-speed.jsonl")
    return True


@torch.inference_mode()
def answers(lm, prompts: list[list[int]]) -> list[str]:
    pad = lm.vocab.end_ids[0]
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = lm.model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                            eos_token_id=list(lm.vocab.end_ids), pad_token_id=pad)
    texts = []
    for row in out[:, width:].tolist():
        ends = [j for j, t in enumerate(row) if t in lm.vocab.end_ids]
        text = lm.vocab.text_bytes(row[:ends[0]] if ends else row).decode(errors="replace")
        for stop in ("\n", "."):
            text = text.split(stop)[0]
        texts.append(text)
    return texts


def qa(models: list[str], n: int, out: Path, deadline: float = float("inf")) -> bool:
    """Append each model's answers; False when the deadline (time.time()) stopped it early."""
    prefix, sample = load_task(n)
    done = {(r["model"], r["id"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    for model in models:
        todo = [(i, ex) for i, ex in sample if (model, i) not in done]
        if not todo:
            continue
        lm = pipeline.load(model, "fp32")
        lm.model.generation_config.update(temperature=None, top_p=None, top_k=None)
        for k in range(0, len(todo), BATCH):
            if time.time() > deadline:
                return False
            batch = todo[k:k + BATCH]
            prompts = [prompt_ids(lm.tokenizer, [{"role": "user", "content": prefix + ex["input"]}], chat=False)
                       for _, ex in batch]
            with out.open("a") as f:
                for (i, ex), text in zip(batch, answers(lm, prompts), strict=True):
                    f.write(json.dumps({"model": model, "id": i, "answer": text, "hit": hit(text, gold(ex))}) + "\n")
            print(f"{model}: {k + len(batch)}/{len(todo)}", file=sys.stderr, flush=True)
    return True


def map_speed(work: Path, out: Path, naive_sample: int = 200) -> None:
    """Time the naive O(V₂) search on the first tokens that needed MinED; the bucketed time is the map
    stage's own (<work>/maps.json)."""
    tgt = pipeline.load(pipeline.FuseLLMConfig.target, "bf16").vocab
    stats = json.loads((work / "maps.json").read_text())
    rows = []
    for source in pipeline.FuseLLMConfig.sources:
        name = pipeline.name_of(source)
        src = pipeline.load(source, "bf16").vocab
        vm = np.load(work / "maps" / f"{name}.npz")
        pending = np.flatnonzero(vm["distance"] > 0)[:naive_sample]
        start = time.perf_counter()
        agree = sum(vocabmap.naive_nearest(src.pieces[i], tgt) == vm["ids"][i] for i in pending)
        per_token = (time.perf_counter() - start) / len(pending)
        rows.append({"source": name, "source_vocab": len(src), "target_vocab": len(tgt),
                     "exact": stats[name]["exact"], "mined": stats[name]["mined"],
                     "bucketed_s": stats[name]["seconds"], "naive_s_per_token": per_token,
                     "naive_estimate_s": round(per_token * stats[name]["mined"]),
                     "naive_agree": f"{agree}/{len(pending)}"})
        print(json.dumps(rows[-1]))
    out.write_text("\n".join(map(json.dumps, rows)) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("run", "map-speed", "qa", "report"))
    p.add_argument("--models", nargs="+", default=[])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--work", type=Path, nargs="+", default=[WORK], help="report: one or more run folders")
    p.add_argument("--train-blocks", type=int, default=24, help="run: training blocks of ~512 characters")
    p.add_argument("--minutes", type=float, default=9.0, help="qa: stop after this long; exit 75 to be rerun")
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    deadline = time.time() + 60 * args.minutes
    if args.what == "run":
        sys.exit(0 if run_all(args.work[0], args.train_blocks, deadline) else 75)
    elif args.what == "map-speed":
        map_speed(args.work[0], RESULTS / "fusellm-map-speed.jsonl")
    elif args.what == "qa":
        if not qa(args.models, args.n, RESULTS / "fusellm-qa.jsonl", deadline):
            sys.exit(75)
    else:
        from fusellm_report import write_report

        write_report(args.work, RESULTS, ROOT / "docs" / "bench-fusellm.md")


if __name__ == "__main__":
    main()
