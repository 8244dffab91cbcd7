"""Dev-set scoring: the dev split never meets the benchmark sample; weights and primary follow the
scores; the `score` and `check` commands write valid presets."""

import json

import yaml

from ensemble.cli import main
from ensemble.presets import load_preset
from ensemble.tune.scoring import SHOTS, adapt, dev_examples, hit, math_task, seeded_order


def dev_file(tmp_path, n=40):
    examples = [{"input": f"Q{i}: the word is", "target": ["the", "is"][i % 2]} for i in range(n)]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"examples": examples}))
    return path


def test_dev_split_is_disjoint_from_the_benchmark_sample(tmp_path):
    path = dev_file(tmp_path, 40)
    examples, order = seeded_order(path)
    benchmark = {examples[i]["input"] for i in order[SHOTS:SHOTS + 25]}  # bench/qa_wikidata.py reads the front
    dev = dev_examples(path, 12)
    assert len(dev.examples) == 12 and not any(e.prompt.split("\n")[-1] in benchmark for e in dev.examples)
    assert not dev.math and dev.correct("The word.", ["word"])


def math_file(tmp_path, n=30):
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = <<{i}+1={i + 1}>>{i + 1}\n#### {i + 1}"}
            for i in range(n)]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_math_dev_set_is_disjoint_and_checks_final_numbers(tmp_path):
    path = math_file(tmp_path)
    prefix, rows = math_task(path)
    assert prefix.count("Question:") == 2 and "<<" not in prefix and prefix.endswith("\n\n")
    benchmark = {r["question"] for _, r in rows[:20]}  # bench/gsm8k.py reads the front
    dev = dev_examples(path, 8)
    assert dev.math and len(dev.examples) == 8
    assert not any(e.prompt.rsplit("Question: ", 1)[1].split("\n")[0] in benchmark for e in dev.examples)
    assert all(e.prompt.startswith(prefix) and e.prompt.endswith("\nAnswer:") for e in dev.examples)
    target = dev.examples[0].targets
    assert dev.correct(f"so 1,000 - 1 = {target[0]}\n#### {target[0]}", target)
    assert not dev.correct(f"#### {int(target[0]) + 1}", target) and not dev.correct("", target)


def test_adapt_weights_follow_scores():
    weights, primary = adapt([0.30, 0.51, 0.45])
    assert primary == 1 and weights[0] < weights[2] < weights[1]
    assert abs(sum(weights) - 3) < 1e-3
    assert adapt([0.4, 0.4]) == ((1.0, 1.0), 0)


def test_hit_normalises():
    assert hit(" The United States.", ["United States"]) and not hit("", ["x"]) and not hit("France", ["Spain"])


def test_score_and_check_commands_write_presets(fixture_dirs, tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"members": [{"model": str(fixture_dirs["bpe-qwen2"]), "dtype": "fp32"},
                                                  {"model": str(fixture_dirs["uni-llama"]), "dtype": "fp32"}],
                                      "method": "deepen"}))
    data, out = dev_file(tmp_path), tmp_path / "scored.yaml"
    assert main(["score", "--preset", str(preset), "--data", str(data), "--n", "6", "--out", str(out)]) == 0
    config = load_preset(str(out))
    assert all(m.score is not None for m in config.members) and config.method == "deepen"
    assert config.primary == max(range(2), key=lambda i: config.members[i].score)
    assert main(["check", "--preset", str(preset), "--data", str(data), "--n", "6", "--apply", "weight",
                 "--out", str(tmp_path / "c.yaml")]) == 0
    assert "dev score" in capsys.readouterr().out
    assert len(load_preset(str(tmp_path / "c.yaml")).members) == 2
    assert main(["score", "--preset", str(preset), "--data", str(math_file(tmp_path)), "--n", "3",
                 "--out", str(tmp_path / "m.yaml")]) == 0
    assert all(m.score is not None for m in load_preset(str(tmp_path / "m.yaml")).members)
    assert "Dev scores: 3 examples of math.jsonl" in yaml.safe_load((tmp_path / "m.yaml").read_text())["description"]


def test_write_scores_keeps_comments_and_layout(tmp_path):
    """The rewritten preset keeps the source's comments and flow-style member rows; dropped members go,
    and the result loads as a preset with the derived weights and primary."""
    from pathlib import Path

    from ensemble.tune.scoring import MemberScore, write_scores

    source = Path(__file__).resolve().parents[1] / "presets" / "offline-default.yaml"
    scores = [MemberScore("s", 0.42, 1.2, 100), MemberScore("g", 0.55, 1.6, 100), MemberScore("q", 0.1, 1.3, 100)]
    out = tmp_path / "scored.yaml"
    data = write_scores(source, scores, out, drop=(2,), dev="100 examples of qa_wikidata.json")
    text = out.read_text()
    assert "# Gemma has no chat template" in text
    assert '{model: "offline:gemma-3-270m", dtype: bf16, score: 0.55, weight:' in text
    assert "qwen2.5-coder" not in text.split("description")[1].split("members:")[1]
    config = load_preset(str(out))
    assert [m.score for m in config.members] == [0.42, 0.55] and config.primary == 1
    assert config.weights == tuple(m["weight"] for m in data["members"]) and config.weights[0] < config.weights[1]
    assert data["description"].rstrip().endswith("Dev scores: 100 examples of qa_wikidata.json; weights "
                                                  "proportional to them, the best member primary.")
