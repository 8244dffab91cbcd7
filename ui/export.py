"""A comparison record (Session.record()) -> JSON and Markdown documents. Pure."""

from __future__ import annotations

import json

from .render import FUSED_KEY, drive_stats


def to_json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, indent=1)


def to_markdown(record: dict) -> str:
    settings, names = record.get("settings") or {}, record.get("members", [])
    s = settings.get("sampling", {})
    lines = ["# Ensemble Chat comparison", "",
             f"- method: `{settings.get('method', '?')}`",
             "- members: " + ", ".join(f"`{m['model']}` ({m['quant']}, weight {m['weight']:g})"
                                       for m in settings.get("members", [])),
             f"- primary: {names[settings['primary']] if 'primary' in settings and names else '?'}",
             "- decoding: " + ", ".join(f"{k} {v}" for k, v in s.items()), ""]
    if record.get("system"):
        lines += ["**System prompt:**", "", _quote(record["system"]), ""]
    for n, turn in enumerate(record.get("turns", []), 1):
        lines += [f"## Turn {n}", "", "**User:**", "", _quote(turn["prompt"]), ""]
        fused = turn["columns"].get(FUSED_KEY)
        if fused:
            lines += ["**Ensemble:**", "", _quote(fused["text"]), ""]
            drove, agreed = drive_stats(fused, len(names))
            lines += ["| member | drove | agrees with its solo argmax |", "|---|---|---|"]
            lines += [f"| {name} | {d:.0%} | {a:.0%} |" for name, d, a in zip(names, drove, agreed, strict=True)]
            lines.append("")
        for i, name in enumerate(names):
            column = turn["columns"].get(str(i))
            if column:
                lines += [f"**{name} alone:**", "", _quote(column["text"]), ""]
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "").split("\n"))
