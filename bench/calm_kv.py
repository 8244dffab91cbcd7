"""CALM key-value arithmetic at CPU size (arXiv 2401.02412, Table 1): train two small members, compose
them, train the paper's LoRA baseline on the anchor, and score every model (docs/bench-calm.md).

    python bench/calm_kv.py --setting lr2e-3 --seed 0 --max-seconds 800  # train + validation rows; rerun to resume
    python bench/calm_kv.py --final --seed 0 --max-seconds 800  # the setting chosen on validation: held-out, once
    python bench/calm_kv.py --report                            # regenerate the table from bench/results/

Settings are chosen on validation keys only: `--final` takes the candidate with the best composed accuracy
on seed 0's validation keys (it refuses until every candidate has one), trains it for the given seed if
needed, and scores the held-out keys once: a (setting, seed) whose held-out rows exist is never scored again.
Work (members, compositions, adapters, checkpoints) goes to out/calm-kv/s<seed>/; raw rows are appended to
bench/results/calm-kv.jsonl (accuracies) and calm-kv-timing.jsonl (chunk times); the tables are generated
from them by bench/calm_report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calm_report import CANDIDATES, KEYS, MEMBERS, RESULTS, SETTINGS, TIMING, choose, jsonl, write_report  # noqa: E402

from ensemble.compose import ComposeConfig, Connection, compose, load_composed, lora, save_composed  # noqa: E402
from ensemble.compose.evaluate import accuracy  # noqa: E402
from ensemble.compose.kvarith import anchor_tokenizer, augment_tokenizer, make_task, save_member, small_model  # noqa: E402
from ensemble.compose.store import composition_size  # noqa: E402
from ensemble.compose.train import TrainConfig, composition_loss, fit, lm_loss  # noqa: E402

# Tiny members (4 decoder layers each): "every 4th augmenting layer" is its last one (3), where the value
# is held; it feeds anchor layers 0 and 2, leaving the anchor depth after each injection to add.
CONNECTIONS = (Connection(0, 3, 0), Connection(0, 3, 2))
AUG_VOCAB = 5000  # every one of the 2,000 keys one piece
EVAL_N = 1000


def append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, weights_only=False)["step"]) if path.is_file() else 0


def timed_fit(stage: str, seed: int, setting: str, ckpt: Path, train) -> bool:
    """Run `train()` (a resumable fit), then append the steps it took and the wall time to the timing rows."""
    before, start, cpu = checkpoint_step(ckpt), time.time(), time.process_time()
    done = train()
    steps = checkpoint_step(ckpt) - before
    if steps:
        append(TIMING, {"stage": stage, "seed": seed, "setting": setting, "steps": steps,
                        "seconds": round(time.time() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
                        "load1": round(os.getloadavg()[0], 2)})
    return done


def log_to(name: str):
    return lambda s: print(f"[{name}] {s}", flush=True)


def train_member(work: Path, name: str, data, tok, seed: int, budget: float) -> bool:
    if (work / name / "config.json").is_file():
        return True
    kind, layers, width, steps = MEMBERS[name]
    model = small_model(kind, tok, layers, width, seed).train()
    cfg = TrainConfig(steps=steps, batch=64, lr=1e-3, weight_decay=0.0, warmup=100, clip=1.0, seed=seed,
                      max_seconds=budget, log_every=250)
    ckpt = work / f"{name}.ckpt"
    done = timed_fit(name, seed, "", ckpt, lambda: fit(list(model.parameters()), lm_loss(model, tok), data, ckpt,
                                                       cfg, log=log_to(name)))
    if done:
        save_member(model.eval(), tok, work / name)
    return done


def training_data(task, seed: int):
    # 20% plain additions keep the anchor's own skill: trained on key sums alone, a composition that
    # overrides the anchor's number reading loses plain arithmetic (docs/bench-calm.md, digit anchor).
    return task.key_arithmetic(task.train_keys, 40_000, seed) + task.arithmetic(10_000, seed + 10)


def train_composition(work: Path, task, seed: int, setting: str, budget: float) -> bool:
    final = work / f"composed-{setting}"
    if (final / "compose.json").is_file():
        return True
    steps, lr = SETTINGS[setting]
    model = compose(ComposeConfig(str(work / "anchor"), (str(work / "augment"),), CONNECTIONS, heads=4),
                    dtype=torch.float32, seed=seed).train()
    tc = TrainConfig(steps=steps, batch=64, lr=lr, warmup=100, clip=1.0, seed=seed, max_seconds=budget, log_every=500)
    ckpt = work / f"composed-{setting}.ckpt"
    done = timed_fit("composed", seed, setting, ckpt, lambda: fit(
        list(model.blocks.parameters()), composition_loss(model), training_data(task, seed), ckpt, tc,
        log=log_to("composed")))
    if done:
        save_composed(model.eval(), final)
    return done


def lora_anchor(work: Path, seed: int):
    """The anchor with adapters sized like the composition (CALM's LoRA baseline)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(work / "anchor")
    anchor = AutoModelForCausalLM.from_pretrained(work / "anchor", dtype=torch.float32)
    rank = lora.matching_rank(anchor, composition_params(work))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return tok, lora.with_lora(anchor, rank)


def composition_params(work: Path) -> int:
    """The composition's trained parameters, from a freshly built one (its size does not depend on training)."""
    model = compose(ComposeConfig(str(work / "anchor"), (str(work / "augment"),), CONNECTIONS, heads=4),
                    dtype=torch.float32)
    return composition_size(model)


def train_lora(work: Path, task, seed: int, setting: str, budget: float) -> bool:
    """The same data, steps, batch and learning rate as the composition; only the adapters train."""
    final = work / f"lora-{setting}"
    if (final / "adapter_config.json").is_file():
        return True
    steps, lr = SETTINGS[setting]
    tok, model = lora_anchor(work, seed)
    model.train()
    tc = TrainConfig(steps=steps, batch=64, lr=lr, warmup=100, clip=1.0, seed=seed, max_seconds=budget, log_every=500)
    ckpt = work / f"lora-{setting}.ckpt"
    params = [p for p in model.parameters() if p.requires_grad]
    done = timed_fit("lora", seed, setting, ckpt, lambda: fit(params, lm_loss(model, tok), training_data(task, seed),
                                                              ckpt, tc, log=log_to("lora")))
    if done:
        model.save_pretrained(final)
    return done


def eval_sets(task, seed: int, held_out: bool) -> dict:
    sets = {"plain": task.arithmetic(EVAL_N, seed + 1),
            "train keys": task.key_arithmetic(task.train_keys, EVAL_N, seed + 2),
            "validation keys": task.key_arithmetic(task.valid_keys, EVAL_N, seed + 3)}
    if held_out:
        sets["held-out keys"] = task.key_arithmetic(task.held_out, EVAL_N, seed + 4)
    return sets


def load_models(work: Path, setting: str):
    """name -> (model, tokenizer, augment_fn or None, trained parameters, steps)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = {}
    for name in ("anchor", "augment"):
        model = AutoModelForCausalLM.from_pretrained(work / name, dtype=torch.float32).eval()
        out[name] = (model, AutoTokenizer.from_pretrained(work / name), None, 0, MEMBERS[name][3])
    tok, composed = load_composed(work / f"composed-{setting}", torch.float32)
    steps = SETTINGS[setting][0]
    out["composed"] = (composed.eval(), tok, composed.encode_augments, composition_size(composed), steps)
    base = AutoModelForCausalLM.from_pretrained(work / "anchor", dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, work / f"lora-{setting}")
    trained = sum(p.numel() for n, p in adapted.named_parameters() if "lora_" in n)
    out["lora"] = (adapted.merge_and_unload().eval(), tok, None, trained, steps)
    return out


def evaluate(work: Path, task, seed: int, setting: str, held_out: bool) -> None:
    """Append a row per (model, split) not yet in the results; held-out only when asked (--final)."""
    have = {(r["model"], r["split"]) for r in jsonl(RESULTS) if (r["setting"], r["seed"]) == (setting, seed)}
    sets = eval_sets(task, seed, held_out)
    models = load_models(work, setting)
    for name, (model, tok, augment_fn, trained, steps) in models.items():
        for split, pairs in sets.items():
            if (name, split) in have:
                continue
            acc = accuracy(model, tok, pairs, augment_fn)
            append(RESULTS, {"setting": setting, "seed": seed, "keys": KEYS, "model": name, "split": split,
                             "n": len(pairs), "correct": round(acc * len(pairs)), "steps": steps,
                             "trained_params": trained})
            print(f"{setting} seed {seed} {name} {split}: {100 * acc:.1f}%", flush=True)


def run(setting: str, seed: int, max_seconds: float, held_out: bool) -> bool:
    work = ROOT / "out" / "calm-kv" / f"s{seed}"
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    task = make_task(n_keys=KEYS, seed=seed)

    def left() -> float:
        return 0.0 if max_seconds <= 0 else max(1.0, max_seconds - (time.monotonic() - start))

    stages = (lambda: train_member(work, "anchor", task.all_arithmetic(), anchor_tokenizer(), seed, left()),
              lambda: train_member(work, "augment", task.recall(task.values), augment_tokenizer(task, AUG_VOCAB),
                                   seed + 1, left()),
              lambda: train_composition(work, task, seed, setting, left()),
              lambda: train_lora(work, task, seed, setting, left()))
    if not all(stage() for stage in stages):  # stops at the first stage the budget cut short
        return False
    evaluate(work, task, seed, setting, held_out)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=list(SETTINGS), default=next(iter(CANDIDATES)))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--final", action="store_true", help="the setting chosen on validation, with held-out keys")
    ap.add_argument("--max-seconds", type=float, default=0.0, help="training time budget for this call")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--report", action="store_true", help="only regenerate docs/bench-calm.md and the README line")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.report:
        setting = args.setting
        if args.final:
            setting = choose(jsonl(RESULTS))  # a one-line error until every candidate has validation rows
            print(f"chosen on validation keys: {setting}")
        if not run(setting, args.seed, args.max_seconds, args.final):
            sys.exit(75)
    write_report()


if __name__ == "__main__":
    main()
