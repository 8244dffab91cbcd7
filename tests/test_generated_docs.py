"""Every number the README quotes from a benchmark is generated from the raw rows in bench/results/: each
generator's block, recomputed here from those rows, is what the README holds. A hand edit, or a results
change without re-running the generator, fails."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    yield
    for name in ("quality", "memory", "alignment", "gsm8k", "qa_wikidata", "readme", "fusellm_report", "calm_report"):
        sys.modules.pop(name, None)


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (RESULTS / name).read_text().splitlines()]


def block(name: str) -> str:
    from readme import block as readme_block

    return readme_block(name)


def test_quality_bullets_match_the_results(bench_path):
    import quality

    assert block("quality") == "\n".join(quality.readme_block()) + "\n"


def test_memory_line_matches_the_results(bench_path):
    import memory

    assert block("memory") == memory.readme_line(rows("memory.jsonl")) + "\n"


def test_alignment_line_matches_the_last_run(bench_path):
    import alignment

    assert block("alignment") == alignment.readme_line(rows("alignment.jsonl")[-1]) + "\n"


def test_fusellm_doc_and_readme_line_match_the_results(bench_path):
    import fusellm_report

    text, lines = fusellm_report.render(RESULTS)
    assert (ROOT / "docs" / "bench-fusellm.md").read_text() == text
    assert block("fusellm") == "\n".join(lines) + "\n"


def test_calm_doc_and_readme_line_match_the_results(bench_path):
    import calm_report

    doc = (ROOT / "docs" / "bench-calm.md").read_text()
    assert calm_report.render(doc) == doc
    assert block("calm_kv") == "\n".join(calm_report.readme_lines(calm_report.jsonl(calm_report.RESULTS))) + "\n"


def heldout_rows(arm: str, extra_nats: float, seed: int = 0) -> list[dict]:
    return [{"corpus_seed": seed, "train_blocks": 1000, "corpus_sha256": "x", "arm": arm, "steps": 250,
             "block": f"doc#{i}", "kind": "code", "nats": 100.0 + (i % 7) + extra_nats * (i % 2 + 1),
             "bytes": 200} for i in range(200)]


def test_the_fusellm_tables_come_from_the_rows(bench_path, tmp_path):
    """Rows with a known effect give that effect, its reading, and (all four arms on both seeds) the
    full-size README line; the same rows with one arm missing do not claim full size."""
    import fusellm_report

    effects = {"control": 0.0, "mince": -1.0, "avgce": 0.0, "distill-qwen": 1.0}
    rows = [r for seed in (0, 1) for arm, e in effects.items() for r in heldout_rows(arm, e, seed)]
    (tmp_path / "fusellm-heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text, (line,) = fusellm_report.render(tmp_path)
    delta = -1.5 / 200 / 0.6931471805599453  # mean extra nats per block over bytes, in bits
    assert f"mince seed 0 {delta:+.4f}" in line and "(lower)" in line
    assert "avgce seed 1 +0.0000" in line and "(within noise)" in line and "(higher)" in line
    assert "Full size" in text and "Not yet measured" not in text
    (tmp_path / "fusellm-heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-200]))
    text, (line,) = fusellm_report.render(tmp_path)
    assert "not yet measured at full size" in line and "Not yet measured at full size" in text
