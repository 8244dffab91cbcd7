"""Streaming smoothness of the chat page: 4 members (5 columns), 8 turns, 400-token answers.

A scripted engine stream (no models: the cost measured is the UI's) paces 400 pieces per column at --rate pieces a
second into the real app (ui.build_app), and Debian's chromium (Playwright, never `playwright install`) shows it.
For each turn, the engine's time runs from its first piece to its last; the browser's last paint is the first
animation frame in which every column's last answer shows the answer's final word. The ratio is

    (last paint - first piece) / (last piece - first piece)      goal <= 1.5

and the lag is last paint - last piece. The server's time to build one streamed update (Handlers.view) is kept
per turn too: flat in the conversation's length is the point. `--mode full` renders every turn on every update,
as the page did before (the comparison row).

    python bench/ui_stream.py [--mode incremental|full] [--rate 30] [--turns 8] [--paced 1,8]
    python bench/ui_stream.py --server        # the server's cost of one update per turn, no browser
    python bench/ui_stream.py --report        # docs/bench-ui.md from bench/results/ui_stream.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.decode.events import FUSED, Finished, Piece, Stats  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ui_stream.jsonl"
DOC = ROOT / "docs" / "bench-ui.md"
MEMBERS = 4
TOKENS = 400
STATS = Stats(TOKENS, 0.0, 0.0, 0.0, (), (), (), ())
# The final word of every answer, per turn: the page has painted the answer once every column shows it.
WATCH_JS = """([marker, ids]) => {
 window.__busy = 0;  // the main thread's long tasks (over 50 ms) during the turn, ms
 if (!window.__observer) {
   window.__observer = new PerformanceObserver((l) => l.getEntries().forEach((e) => { window.__busy += e.duration; }));
   window.__observer.observe({ type: 'longtask' });
 }
 window.__painted = new Promise((resolve) => {
  const shown = () => ids.every((id) => { const bots = document.querySelectorAll(`#${id} [data-testid='bot']`);
                                         return bots.length && bots[bots.length - 1].textContent.includes(marker); });
  const frame = () => shown() ? resolve(performance.timeOrigin + performance.now()) : requestAnimationFrame(frame);
  requestAnimationFrame(frame);
}); }"""
COLUMN_IDS = ["col-fused", *(f"col-solo{i}" for i in range(MEMBERS))]


def answer_pieces(turn: int) -> list[str]:
    """TOKENS pieces of markdown: prose, a fenced code block with indentation, a list, then the marker word."""
    words = [f"word{i} " for i in range(150)]
    code = ["\n\n```python\n"] + [f"def f{i}(x):\n" if i % 4 == 0 else f"    return x + {i}\n" for i in range(148)]
    items = ["\n```\n\n"] + [f"- item {i}\n" for i in range(100)]
    pieces = (words + code + items)[:TOKENS - 1] + [f"\n\nzzend{turn}"]
    assert len(pieces) == TOKENS
    return pieces


class PacedEngine:
    """The backend: load does nothing; stream gives every column the same pieces at `rate` a second."""

    def __init__(self):
        self.rate, self.turn, self.times = 1000.0, 0, []  # times: (first piece, last piece) per answer, epoch ms

    def load(self, config, progress):
        progress(1.0, "ready")

    def stream(self, config, messages, should_stop, solo=True):
        n, pieces, start = len(config.members), answer_pieces(self.turn), time.monotonic()
        first = time.time() * 1000
        for k, text in enumerate(pieces):
            time.sleep(max(0.0, start + k / self.rate - time.monotonic()))
            for s in (FUSED, *range(n)):
                shares = tuple(0.7 if i == k % n else 0.1 for i in range(n))
                yield Piece(s, text, k % n, shares, tuple(i == k % n for i in range(n)), (1,) * n)
        self.times.append((first, time.time() * 1000))
        for s in (FUSED, *range(n)):
            yield Finished(s, "".join(pieces), "end", STATS)


def timed_views(mode: str, log: list):
    """Time every Handlers.view call (streaming or not, ms, and when it returned: epoch ms); in `full` mode also
    undo this branch's savings."""
    import ui.columns
    import ui.handlers_view

    original = ui.handlers_view.ViewHandlers.view

    def view(self, session, notes=(), kind="info", busy=False, streaming=False, narrow=True):
        start, streamed = time.perf_counter(), streaming
        if mode == "full":  # every column, every turn, every update
            streaming, narrow = False, True
        out = original(self, session, notes, kind, busy, streaming=streaming, narrow=narrow)
        log.append((streamed, (time.perf_counter() - start) * 1000, time.time() * 1000))
        return out

    ui.handlers_view.ViewHandlers.view = view
    if mode == "full":
        ui.columns.cached = lambda session, key, turn, render: render()


def launch(engine, data_dir, updates_per_second: float):
    from ensemble.align import METHODS
    from tests.browser.server import free_port
    from ui import Context, Limits, build_app
    from ui.layout import launch_options
    from ui.store import ComparisonStore

    members = tuple(MemberSpec(f"bench/member-{c}") for c in "abcd"[:MEMBERS])
    presets = {"bench": EnsembleConfig(members=members, method="unite", sampling=SamplingConfig(max_new_tokens=64))}
    limits = Limits(max_turns=8, updates_per_second=updates_per_second)
    ctx = Context(engine, ComparisonStore(data_dir), presets, sorted(METHODS), limits, "bench")
    demo = build_app(ctx, [m.model for m in members])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    return f"http://127.0.0.1:{port}", demo


def run(args) -> list[dict]:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.conftest import ARGS, CHROMIUM

    engine, views = PacedEngine(), []
    timed_views(args.mode, views)
    url, demo = launch(engine, tempfile.mkdtemp(prefix="ui-bench-"), args.ups)
    paced = {int(t) for t in args.paced.split(",")}
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(300_000)
            expect.set_options(timeout=300_000)
            page.goto(url)
            expect(page.locator("#model0 input")).not_to_have_value("")
            for turn in range(1, args.turns + 1):
                engine.turn, engine.rate = turn, args.rate if turn in paced else 2000.0
                views.clear()
                page.evaluate(WATCH_JS, [f"zzend{turn}", COLUMN_IDS])
                page.locator("#prompt textarea").fill(f"question {turn}")
                page.locator("#send").click()
                painted = page.evaluate("() => window.__painted")
                busy = page.evaluate("() => window.__busy") / 1000
                expect(page.locator("#send")).to_be_enabled()  # the turn's last view has arrived
                first, last = engine.times[-1]
                if turn in paced:
                    streamed = [ms for s, ms, _ in views if s]
                    served = min((at for _, _, at in views if at >= last), default=float("nan"))
                    rows.append({**row(args, turn, first, last, painted, streamed),
                                 "served_lag_s": round((served - last) / 1000, 3), "browser_busy_s": round(busy, 3)})
                    print(json.dumps(rows[-1]), flush=True)
            browser.close()
    finally:
        demo.close()
    return rows


def server_rows(args) -> list[dict]:
    """No browser: one streamed view (Handlers.view) of a full 400-piece live answer after 0..7 finished turns,
    every column and the wide one alone; the mean of `repeats` calls, ms."""
    from ui import Context, Handlers, Limits
    from ui.picker import FIELDS, settings_from_config, values_from_settings
    from ui.state import Session
    from ui.store import ComparisonStore

    engine = PacedEngine()
    members = tuple(MemberSpec(f"bench/member-{c}") for c in "abcd"[:MEMBERS])
    preset = EnsembleConfig(members=members, method="unite", sampling=SamplingConfig(max_new_tokens=64))
    ctx = Context(engine, ComparisonStore(tempfile.mkdtemp(prefix="ui-bench-")), {"bench": preset}, ["unite"],
                  Limits(max_turns=8), "bench")
    h, session, rows = Handlers(ctx), Session(), []
    values = values_from_settings(settings_from_config("bench", preset))
    assert len(values) == len(FIELDS)
    for turn in range(1, args.turns + 1):
        engine.turn = turn
        for _ in h.respond(session, f"question {turn}", *values):
            pass
        live = session.turns[-1]["columns"].values()
        reasons = [c["reason"] for c in live]
        for c in live:
            c["reason"] = ""  # as if still streaming: rendered afresh every time
        timing = {}
        for narrow in (True, False):
            start = time.perf_counter()
            for _ in range(args.repeats):
                h.view(session, ["generating…"], busy=True, streaming=True, narrow=narrow)
            timing[narrow] = (time.perf_counter() - start) / args.repeats * 1000
        for c, reason in zip(live, reasons, strict=True):
            c["reason"] = reason
        rows.append({"mode": "server-view", "turn": turn, "columns": MEMBERS + 1, "tokens": TOKENS,
                     "view_ms_all_columns": round(timing[True], 2), "view_ms_wide_only": round(timing[False], 2),
                     "repeats": args.repeats, "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2),
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def row(args, turn: int, first: float, last: float, painted: float, streamed: list[float]) -> dict:
    engine_s = (last - first) / 1000
    return {"mode": args.mode, "turn": turn, "updates_per_second": args.ups, "columns": MEMBERS + 1, "tokens": TOKENS,
            "rate": args.rate,
            "engine_s": round(engine_s, 3), "lag_s": round((painted - last) / 1000, 3),
            "ratio": round((painted - first) / 1000 / engine_s, 3), "updates": len(streamed),
            "view_ms_median": round(statistics.median(streamed), 2) if streamed else None,
            "view_ms_max": round(max(streamed), 2) if streamed else None,
            "chromium": chromium_version(), "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def chromium_version() -> str:
    from tests.browser.conftest import CHROMIUM

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    return "?"


def report() -> str:
    every = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    rows = [r for r in every if r["mode"] != "server-view"]
    server = [r for r in every if r["mode"] == "server-view"]
    lines = ["# Streaming in the browser: 5 columns, 8 turns, 400-token answers", "",
             "Generated by `python bench/ui_stream.py --report` from `bench/results/ui_stream.jsonl` (do not edit).",
             "", "A scripted engine (no models) streams 400 pieces into every column of the real app at a fixed rate;",
             "Debian's chromium shows it. **ratio** = (browser's last paint - engine's first piece) / engine's time",
             "(goal <= 1.5); **lag** = last paint - last piece. **view ms** = the server's time to build one streamed",
             "update. `full` is the earlier behaviour (every turn rendered again on every update), for comparison.",
             "**served lag** = the server's last view after the last piece (the rest of the lag is the browser's).",
             "", "| mode | turn | rate (pieces/s) | engine s | lag s | served lag s | ratio | updates "
             "| view ms (median) | view ms (max) | load avg | when |", "|---" * 12 + "|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['turn']} | {r['rate']:g} | {r['engine_s']:.2f} | {r['lag_s']:.2f} | "
                     f"{r.get('served_lag_s', float('nan')):.2f} | {r['ratio']:.2f} | {r['updates']} | "
                     f"{r['view_ms_median']} | {r['view_ms_max']} | {r['load_avg']} | {r['time']} |")
    latest = [r for r in rows if r["mode"] == "incremental"]
    if latest:
        worst = max(latest, key=lambda r: r["ratio"])
        lines += ["", f"Worst incremental turn: turn {worst['turn']}, ratio {worst['ratio']:.2f} "
                      f"(goal <= 1.5: {'met' if worst['ratio'] <= 1.5 else 'not met'})."]
    if server:
        lines += ["", "## The server's cost of one streamed update against the conversation's length", "",
                  "`python bench/ui_stream.py --server`: no browser; one streamed view of a live 400-piece answer",
                  "after 0 to 7 finished turns (mean of the repeats). Flat in the turn number is the point.", "",
                  "| turn | all 5 columns, ms | the wide column alone, ms | load avg | when |", "|---" * 5 + "|"]
        lines += [f"| {r['turn']} | {r['view_ms_all_columns']} | {r['view_ms_wide_only']} | {r['load_avg']} | "
                  f"{r['time']} |" for r in server]
    machine = {(r["chromium"], r["cpus"]) for r in rows}
    lines += ["", "Machine: " + "; ".join(f"{c}, {n} CPUs" for c, n in sorted(machine)) + ". The load average is"
              " the machine's 1-minute load when the turn ended (other jobs shared these CPUs)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("incremental", "full"), default="incremental")
    p.add_argument("--rate", type=float, default=30.0, help="pieces a second per column while measured")
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--ups", type=float, default=15.0, help="the app's --updates-per-second")
    p.add_argument("--paced", default="1,8", help="turns measured at --rate (the others fill the conversation fast)")
    p.add_argument("--report", action="store_true", help="only write docs/bench-ui.md from the results")
    p.add_argument("--server", action="store_true", help="only the server's view cost per turn (no browser)")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    if not args.report:
        rows = server_rows(args) if args.server else run(args)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    DOC.write_text(report())
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
