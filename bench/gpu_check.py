"""Every GPU-only check in one run, on the tiny fixture models (the device machine has no offline models and
no network). Writes one JSON line per check to bench/results/gpu-check.jsonl; `bash bench/gpu_check.sh`.

Checks: DeePEn with every member on CUDA equals the same ensemble on the CPU (fp32); a 4-bit member placed on
the GPU decodes as its own `generate`; members on separate devices (cuda:0 and cuda:1 where there are two,
else cuda:0 and the CPU) equal the all-CPU ensemble for every method; batch-2 decode (issue 17, not built yet:
reported as such). Each check records ok / the error, so one failure does not hide the others.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.models.pool import load_models  # noqa: E402
from tests import fixtures  # noqa: E402
from tests.helpers import config, greedy_ids, run_fused  # noqa: E402
from tests.test_engine import prompts_for  # noqa: E402

OUT = ROOT / "bench" / "results" / "gpu-check.jsonl"
PAIR = ["bpe-qwen2", "uni-llama"]


def answer(paths, devices, method, dtype="fp32"):
    models = [load_models([MemberSpec(str(p), dtype=dtype)], d)[0] for p, d in zip(paths, devices, strict=True)]
    run, events = run_fused(models, config(paths, method), prompts_for(models))
    return run.answer, events[-1].reason, [str(m.device) for m in models]


def deepen_on_cuda(dirs):
    paths = [dirs[n] for n in PAIR]
    gpu = answer(paths, ["cuda:0", "cuda:0"], "deepen")
    cpu = answer(paths, ["cpu", "cpu"], "deepen")
    return {"ok": gpu[0] == cpu[0], "devices": gpu[2], "reason": gpu[1], "same_as_cpu": gpu[0] == cpu[0]}


def four_bit_on_gpu(dirs):
    (lm,) = load_models([MemberSpec(str(dirs["bpe-qwen2"]), dtype="4bit")], "cuda:0")
    prompts = prompts_for([lm])
    cfg = EnsembleConfig(members=(lm.spec,), method="unite", sampling=SamplingConfig(max_new_tokens=24))
    run, _ = run_fused([lm], cfg, prompts)
    same = run.members[0].answer == greedy_ids(lm, prompts[0], 24)
    layers = sorted({type(m).__name__ for m in lm.model.modules() if type(m).__module__.startswith("bitsandbytes")})
    return {"ok": same and bool(layers), "device": str(lm.device), "layers": layers, "equals_generate": same,
            "gpu_mib": round(torch.cuda.memory_allocated() / 2**20, 1)}


def separate_devices(dirs):
    second = "cuda:1" if torch.cuda.device_count() > 1 else "cpu"
    paths = [dirs[n] for n in PAIR]
    out = {"devices": ["cuda:0", second]}
    for method in ("deepen", "gac", "unite"):
        split = answer(paths, ["cuda:0", second], method)
        cpu = answer(paths, ["cpu", "cpu"], method)
        out[method] = split[0] == cpu[0]
    out["ok"] = all(out[m] for m in ("deepen", "gac", "unite"))
    return out


def batch2_decode(dirs):
    return {"ok": None, "note": "batched solo/fused rows: not built (issue 17 built ride-along only; the batch-2 "
                                "design is in docs/bench-speed.md)"}


def main() -> None:
    dirs = fixtures.fixture_dirs()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    with OUT.open("a") as f:
        for check in (deepen_on_cuda, four_bit_on_gpu, separate_devices, batch2_decode):
            start = time.perf_counter()
            try:
                row = check(dirs)
            except Exception as e:  # record and go on: one run must report every check
                row = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
            row = {"check": check.__name__, "when": stamp, "gpu": gpu, "torch": torch.__version__,
                   "seconds": round(time.perf_counter() - start, 2), **row}
            print(json.dumps({k: v for k, v in row.items() if k != "trace"}), flush=True)
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
