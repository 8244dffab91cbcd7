"""Composition training: only the blocks move, resume is exact, the command round-trips (seconds)."""

import json

import torch

from ensemble.compose import ComposeConfig, Connection, compose
from ensemble.compose.__main__ import main
from ensemble.compose.evaluate import greedy_answers
from ensemble.compose.kvarith import anchor_tokenizer, augment_tokenizer, make_task
from ensemble.compose.train import TrainConfig, answer_batch, composition_loss, fit

PAIRS = [(f"x = {a} + {b};", f" {a + b}") for a in range(4) for b in range(3)]


def model_for(fixture_dirs):
    cfg = ComposeConfig(str(fixture_dirs["uni-llama"]), (str(fixture_dirs["bpe-qwen2"]),), (Connection(0, 1, 0),), 2)
    return compose(cfg, dtype=torch.float32, seed=0).train()


def train(model, path, max_seconds=0.0):
    cfg = TrainConfig(steps=6, batch=4, warmup=2, lr=1e-2, max_seconds=max_seconds, log_every=100)
    return fit(list(model.blocks.parameters()), composition_loss(model), PAIRS, path, cfg, log=lambda s: None)


def test_resumed_training_equals_uninterrupted(fixture_dirs, tmp_path):
    whole = model_for(fixture_dirs)
    frozen = {k: v.clone() for k, v in whole.anchor.state_dict().items()}
    assert train(whole, tmp_path / "a.ckpt")
    chunked, calls = model_for(fixture_dirs), 0
    while not train(chunked, tmp_path / "b.ckpt", max_seconds=1e-9):  # stops after every step
        calls += 1
    assert calls == 5
    for got, want in zip(chunked.blocks.parameters(), whole.blocks.parameters(), strict=True):
        torch.testing.assert_close(got, want)
    assert any(p.abs().sum() > 0 for p in (b.attn.out_proj.weight for b in whole.blocks))  # it did train
    assert all(torch.equal(v, whole.anchor.state_dict()[k]) for k, v in frozen.items())


def test_answer_batch_labels_only_the_answer(fixture_dirs):
    tok = model_for(fixture_dirs).tokenizer
    ids, labels = answer_batch(tok, PAIRS[:3])
    for row, lab, (prompt, answer) in zip(ids.tolist(), labels.tolist(), PAIRS[:3], strict=True):
        kept = [t for t in lab if t != -100]
        assert kept[-1] == tok.eos_token_id and tok.decode(kept[:-1]) == answer
        assert row[: lab.index(kept[0])] == tok(prompt)["input_ids"]


def test_command_trains_saves_and_evaluates(fixture_dirs, tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in PAIRS))
    out = tmp_path / "calm"
    args = ["train", "--anchor", str(fixture_dirs["uni-llama"]), "--augment", str(fixture_dirs["bpe-qwen2"]),
            "--data", str(data), "--out", str(out), "--steps", "3", "--batch", "2", "--heads", "2"]
    assert main(args) == 0
    saved = json.loads((out / "compose.json").read_text())
    assert saved["connections"] == [{"augment": 0, "aug_layer": 1, "anchor_layer": 1}]  # 2 layers, every 4th
    assert main(["eval", "--model", str(out), "--data", str(data), "--limit", "4"]) == 0
    assert "exact match" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "x"}) + "\n")
    assert main(["eval", "--model", str(out), "--data", str(bad)]) == 2


def test_batched_greedy_answers_match_one_by_one(fixture_dirs):
    tok, model = trained_looking(fixture_dirs)
    prompts = [p for p, _ in PAIRS[:6]] + ["x = 10 + 100;"]
    batched = greedy_answers(model, tok, prompts, model.encode_augments, max_new=3)
    single = [greedy_answers(model, tok, [p], model.encode_augments, max_new=3)[0] for p in prompts]
    assert batched == single


def trained_looking(fixture_dirs):
    model = model_for(fixture_dirs).eval()
    with torch.no_grad():
        for b in model.blocks:
            b.attn.out_proj.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
            b.proj.weight.mul_(0.01)
    return model.tokenizer, model


def test_kv_task_splits_keys_and_tokenizers_differ():
    task = make_task(n_keys=50, seed=3)
    assert len(task.train_keys) == 10 and not set(task.train_keys) & set(task.held_out)
    assert make_task(n_keys=50, seed=3) == task  # seeded
    prompt, answer = task.key_arithmetic(task.held_out, 1, 0)[0]
    a, b = prompt[:-1].split("+")
    assert int(answer) == task.values[a] + task.values[b]
    anchor, aug = anchor_tokenizer(), augment_tokenizer(task)
    assert len(anchor.tokenize(prompt)) == len(prompt) > len(aug.tokenize(prompt))
