"""FuseLLM on CPU: four arms on the same blocks, two corpus seeds, per-block held-out bits per byte
(docs/bench-fusellm.md).

    python bench/fusellm.py run --corpus-seed 0 --minutes 8  # one seed's acceptance run, resumable (exit 75)
    python bench/fusellm.py map-speed               # vocabulary map: bucketed MinED vs the naive search
    python bench/fusellm.py qa --models M1 M2 ...   # qa_wikidata accuracy of each model, resumable
    python bench/fusellm.py report                  # rewrite docs/bench-fusellm.md and the README line

`run` does every stage of `python -m ensemble.fusellm` for one corpus seed under runs/ (git-ignored work),
and appends what it measures to bench/results/ (committed): each held-out block's nats and bytes for the
untrained target and each arm (fusellm-heldout.jsonl), the fusion rules' teacher weights
(fusellm-fusion.jsonl), and the time each chunk of each stage took (fusellm-timing.jsonl). The tables are
generated from those rows by bench/fusellm_report.py.

qa reuses bench/qa_wikidata.py's sample, few-shot prefix and scoring, and the engine's plain-completion
prompt; answers are greedy, batched with left padding, at most 8 tokens, cut at a newline or a period.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fusellm_report import ARMS, BLOCK_CHARS, HELD_OUT_BLOCKS, TRAIN_BLOCKS, jsonl  # noqa: E402
from qa_wikidata import gold, hit, load_task  # noqa: E402

from ensemble.decode.prompting import prompt_ids  # noqa: E402
from ensemble.fusellm import corpus, pipeline, prepare, vocabmap  # noqa: E402
from ensemble.fusellm.train import TrainConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "runs" / "fusellm-arms"
BATCH = 16
MAX_NEW = 8
# The acceptance corpus, pinned: sha256 of the drawn blocks (corpus.content_hash) at 1,000 training blocks
# of ~512 characters and 200 held-out blocks, per corpus seed. A machine whose Python or installed packages
# draw other blocks stops with a one-line error.
CORPUS_SHA256 = {
    0: "76ace2313e0f5d3fcf77a55e755c842f2822707d0c8c03b55fc59e0cee5a12f3",
    1: "015bca9409683fdc5a22d2951f90964ed9d53f58c3c5bb135a522a171fc79260",
}


def corpus_config(seed: int, train_blocks: int) -> corpus.CorpusConfig:
    pinned = CORPUS_SHA256.get(seed, "") if train_blocks == TRAIN_BLOCKS else ""
    return corpus.CorpusConfig(BLOCK_CHARS, train_blocks, HELD_OUT_BLOCKS, seed, pinned)


def append(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def timed(stage: str, what: str, seed: int, train_blocks: int, count, action):
    """Run `action()`, then append how many units (blocks, steps) it did and how long it took."""
    before, start, cpu = count(), time.time(), time.process_time()
    out = action()
    done = count() - before
    if done:
        append(RESULTS / "fusellm-timing.jsonl", [{
            "stage": stage, "what": what, "corpus_seed": seed, "train_blocks": train_blocks, "units": done,
            "seconds": round(time.time() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "load1": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads()}])
    return out


def run_all(seed: int, train_blocks: int, deadline: float) -> bool:
    """Every stage for one corpus seed, each skipped when done; False when the deadline stopped it."""
    work = WORK / f"c{seed}-{train_blocks}"
    config = pipeline.FuseLLMConfig(corpus=corpus_config(seed, train_blocks))
    pipeline.check_config(work, config)
    train_sample, held_out = corpus.sample(config.corpus)
    sha = corpus.content_hash(train_sample, held_out)
    for model in (config.target, *config.sources):
        name = pipeline.name_of(model)

        def shards(name=name) -> int:
            return len(list((work / "logits" / name).glob("shard-*.pt")))

        if not timed("prepare", name, seed, train_blocks, lambda s=shards: s() * config.shard_size,
                     lambda m=model: prepare_one(work, config, m, train_sample, deadline)):
            return False
    if not (work / "maps.json").exists():
        pipeline.run_map(work, config)
    for rule in dict.fromkeys(rule for rule, _ in ARMS.values()):
        if not (work / f"fused-{rule}.json").exists():
            stats = pipeline.run_fuse(work, config, rule)
            append(RESULTS / "fusellm-fusion.jsonl", [{"corpus_seed": seed, "train_blocks": train_blocks, **stats}])
    folders = {}
    for arm, (rule, lam) in ARMS.items():  # every arm trains before any is scored: each stage gets timed early
        log = work / "runs" / arm / "log.jsonl"
        tcfg = TrainConfig(lam=lam, seed=seed)
        folders[arm] = timed("train", arm, seed, train_blocks, lambda log=log: steps(log),
                             lambda r=rule, a=arm, t=tcfg: pipeline.run_train(work, config, t, r, a, deadline))
        if folders[arm] is None:
            return False
    common = {"corpus_seed": seed, "train_blocks": train_blocks, "corpus_sha256": sha[:16]}
    if not evaluate("base", config.target, held_out, {**common, "corpus_seed": None, "steps": 0}, deadline):
        return False
    return all(evaluate(arm, str(folder), held_out, {**common, "steps": steps(work / "runs" / arm / "log.jsonl")},
                        deadline) for arm, folder in folders.items())


def steps(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def prepare_one(work: Path, config, model: str, blocks, deadline: float) -> bool:
    name = pipeline.name_of(model)
    if all(prepare.shard_path(work, name, s).exists() for s in range(config.n_shards)):
        return True
    # fp32: bf16 halves the memory but is 4-5x slower on a CPU without bf16 matrix units (measured here)
    return prepare.prepare_model(pipeline.load(model, "fp32"), blocks, work, config.shard_size, deadline)


def evaluate(arm: str, model: str, blocks, meta: dict, deadline: float) -> bool:
    """Append each held-out block's nats and bytes for `arm` (resumes block by block)."""
    path = RESULTS / "fusellm-heldout.jsonl"
    key = (meta["corpus_seed"], meta["train_blocks"], arm)
    done = {r["block"] for r in jsonl(path) if (r["corpus_seed"], r["train_blocks"], r["arm"]) == key}
    todo = [b for b in blocks if b.key not in done]
    if not todo:
        return True
    lm = pipeline.load(model)
    lm.model.eval()

    def count() -> int:
        return sum((r["corpus_seed"], r["train_blocks"], r["arm"]) == key for r in jsonl(path))

    def score() -> bool:
        for block in todo:
            if time.time() > deadline:
                return False
            rec = prepare.record(lm, block, k=1)
            append(path, [{**meta, "arm": arm, "block": block.key, "kind": block.kind, "nats": rec.nats,
                           "bytes": rec.bytes}])
        return True

    return timed("eval", arm, meta["corpus_seed"], meta["train_blocks"], count, score)


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
    p.add_argument("what", choices=("run", "map-speed", "qa", "report", "hash"))
    p.add_argument("--models", nargs="+", default=[])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--corpus-seed", type=int, default=0, help="run: which training blocks (seeds share none)")
    p.add_argument("--train-blocks", type=int, default=TRAIN_BLOCKS,
                   help=f"run: training blocks of ~{BLOCK_CHARS} characters (the acceptance run: {TRAIN_BLOCKS})")
    p.add_argument("--minutes", type=float, default=9.0, help="run, qa: stop after this long; exit 75 to be rerun")
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    deadline = time.time() + 60 * args.minutes
    if args.what == "run":
        sys.exit(0 if run_all(args.corpus_seed, args.train_blocks, deadline) else 75)
    elif args.what == "hash":  # the content hash to pin in CORPUS_SHA256
        cfg = corpus.CorpusConfig(BLOCK_CHARS, args.train_blocks, HELD_OUT_BLOCKS, args.corpus_seed)
        print(corpus.content_hash(*corpus.sample(cfg)))
    elif args.what == "map-speed":
        map_speed(WORK / f"c0-{TRAIN_BLOCKS}", RESULTS / "fusellm-map-speed.jsonl")
    elif args.what == "qa":
        if not qa(args.models, args.n, RESULTS / "fusellm-qa.jsonl", deadline):
            sys.exit(75)
    else:
        from fusellm_report import write_report

        write_report(RESULTS)


if __name__ == "__main__":
    main()
