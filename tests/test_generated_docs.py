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
    for name in ("quality", "memory", "alignment", "gsm8k", "qa_wikidata", "readme"):
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
