"""CALM key-value arithmetic at CPU size (arXiv 2401.02412, Table 1): train two small members, compose
them, and report each model's accuracy.

    python bench/calm_kv.py                    # all stages; rerun to resume (each stage checkpoints)
    python bench/calm_kv.py --max-seconds 500  # stop after ~500 s of training, resume on the next call

Work goes to out/calm-kv/ (members, composition, checkpoints, results.json); the table goes to
docs/bench-calm.md. Everything is seeded: the same command gives the same numbers on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.compose import ComposeConfig, Connection, compose, save_composed  # noqa: E402
from ensemble.compose.evaluate import accuracy  # noqa: E402
from ensemble.compose.kvarith import (  # noqa: E402
    anchor_tokenizer,
    augment_tokenizer,
    make_task,
    save_member,
    small_model,
)
from ensemble.compose.store import composition_size  # noqa: E402
from ensemble.compose.train import TrainConfig, composition_loss, fit, lm_loss  # noqa: E402

# Tiny members (4 decoder layers each): "every 4th augmenting layer" is its last one (3), where the value
# is held; it feeds anchor layers 0 and 2, leaving the anchor depth after each injection to add.
CONNECTIONS = (Connection(0, 3, 0), Connection(0, 3, 2))
MEMBERS = {  # name: (architecture, layers, width, training steps)
    "anchor": ("llama", 4, 128, 4000),
    "augment": ("qwen2", 4, 128, 2000),
}
COMPOSE_STEPS = 2000
EVAL_N = 1000


def train_member(work: Path, name: str, data, tok, seed: int, budget: float) -> bool:
    final = work / name
    if (final / "config.json").is_file():
        return True
    kind, layers, width, steps = MEMBERS[name]
    model = small_model(kind, tok, layers, width, seed).train()
    cfg = TrainConfig(steps=steps, batch=64, lr=1e-3, weight_decay=0.0, warmup=100, clip=1.0, seed=seed,
                      max_seconds=budget, log_every=250)
    print(f"[{name}] {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(data)} examples")
    done = fit(list(model.parameters()), lm_loss(model, tok), data, work / f"{name}.ckpt", cfg,
               log=lambda s: print(f"[{name}] {s}", flush=True))
    if done:
        save_member(model.eval(), tok, final)
    return done


def train_composition(work: Path, task, seed: int, budget: float, steps: int, lr: float,
                      init: Path | None = None) -> bool:
    final = work / "composed"
    if (final / "compose.json").is_file():
        return True
    cfg = ComposeConfig(str(work / "anchor"), (str(work / "augment"),), CONNECTIONS, heads=4)
    model = compose(cfg, dtype=torch.float32, seed=seed).train()
    if init is not None:  # go on from a finished composition, with a new warm-up and cosine schedule
        model.blocks.load_state_dict(load_file(str(init / "composition.safetensors")))
    # 20% plain additions keep the anchor's own skill: trained on key sums alone, a composition that
    # overrides the anchor's number reading loses plain arithmetic (docs/bench-calm.md, digit anchor).
    data = task.key_arithmetic(task.train_keys, 40_000, seed) + task.arithmetic(10_000, seed + 10)
    print(f"[composed] {composition_size(model) / 1e6:.2f}M trainable parameters, {len(data)} examples")
    tc = TrainConfig(steps=steps, batch=64, lr=lr, warmup=100, clip=1.0, seed=seed, max_seconds=budget,
                     log_every=100)
    done = fit(list(model.blocks.parameters()), composition_loss(model), data, work / "composed.ckpt", tc,
               log=lambda s: print(f"[composed] {s}", flush=True))
    if done:
        save_composed(model.eval(), final)
    return done


def evaluate(work: Path, task, seed: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ensemble.compose import load_composed

    sets = {
        "recall (held-out keys)": task.recall(task.held_out[:EVAL_N]),
        "arithmetic (plain numbers)": task.arithmetic(EVAL_N, seed + 1),
        "arithmetic over train keys": task.key_arithmetic(task.train_keys, EVAL_N, seed + 2),
        "arithmetic over held-out keys": task.key_arithmetic(task.held_out, EVAL_N, seed + 3),
    }
    results = {}
    for name in ("anchor", "augment"):
        tok = AutoTokenizer.from_pretrained(work / name)
        model = AutoModelForCausalLM.from_pretrained(work / name, dtype=torch.float32).eval()
        results[name] = {k: accuracy(model, tok, v) for k, v in sets.items()}
    tok, model = load_composed(work / "composed", torch.float32)
    model.eval()
    results["composed"] = {k: accuracy(model, tok, v, model.encode_augments) for k, v in sets.items()}
    return results


def write_table(results: dict, command: str, seconds: float, path: Path) -> None:
    sets = list(next(iter(results.values())))
    lines = ["| task | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    for s in sets:
        lines.append(f"| {s} | " + " | ".join(f"{100 * results[m][s]:.1f}%" for m in results) + " |")
    block = "\n".join(lines)
    text = path.read_text() if path.is_file() else ""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    body = f"{begin}\n`{command}` (evaluation {seconds:.0f}s)\n\n{block}\n{end}"
    text = text[: text.index(begin)] + body + text[text.index(end) + len(end):] if begin in text else body + "\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "calm-kv")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=0.0, help="training time budget for this call")
    ap.add_argument("--keys", type=int, default=1000, help="number of keys (20%% train the composition)")
    ap.add_argument("--aug-vocab", type=int, default=3000, help="augmenting BPE size (600: keys in 2-3 pieces)")
    ap.add_argument("--anchor-digits", action="store_true", help="the anchor reads numbers digit by digit")
    ap.add_argument("--compose-steps", type=int, default=COMPOSE_STEPS)
    ap.add_argument("--compose-lr", type=float, default=1e-3, help="peak learning rate of the composition")
    ap.add_argument("--init-from", type=Path, help="a finished `composed` folder to go on training from")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-calm.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work, start = args.work, time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    task = make_task(n_keys=args.keys, seed=args.seed)

    def left() -> float:
        return 0.0 if args.max_seconds <= 0 else max(1.0, args.max_seconds - (time.monotonic() - start))

    anchor_tok, aug_tok = anchor_tokenizer(not args.anchor_digits), augment_tokenizer(task, args.aug_vocab)
    if not train_member(work, "anchor", task.all_arithmetic(), anchor_tok, args.seed, left()):
        return
    if not train_member(work, "augment", task.recall(task.values), aug_tok, args.seed + 1, left()):
        return
    if not train_composition(work, task, args.seed, left(), args.compose_steps, args.compose_lr,
                             args.init_from):
        return
    t0 = time.monotonic()
    results = evaluate(work, task, args.seed)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    write_table(results, "python bench/calm_kv.py " + " ".join(sys.argv[1:]), time.monotonic() - t0, args.doc)


if __name__ == "__main__":
    main()
