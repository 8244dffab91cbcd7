"""Which member goes on which GPU, in which format: a pure function of the estimates and the free memory.

First-fit-decreasing of whole members over the GPUs (each member's forward then runs on one device). A member
that fits on no single GPU is split over the free memory of several (`device_map="auto"` with `max_memory`).
Members asking for `auto` step down from the checkpoint's dtype to 8bit to 4bit, largest member first, until
the set fits. With no GPU everything goes to the CPU in its requested format (checked against the RAM). If
nothing fits, the error names the member, the shortfall and a quantization to try, before anything is
downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import LoadError

GIB = 2**30
CUDA_CONTEXT = 600 * 2**20  # per GPU: CUDA context (~0.3-0.5 GiB with torch 2.x) plus cuBLAS/bnb workspaces


@dataclass(frozen=True)
class Need:
    """One member's estimated bytes per weight format (ensemble/models/memory.py), and the formats it may use."""

    member: int
    name: str
    sizes: Mapping[str, int]  # dtype -> bytes: weights + KV cache + activations + headroom
    allowed: tuple[str, ...]  # best first: quantize.candidates (for auto e.g. bf16, 8bit, 4bit)
    weights: Mapping[str, int] = field(default_factory=dict)  # dtype -> bytes of the weights alone


@dataclass(frozen=True)
class Slot:
    member: int
    name: str
    dtype: str
    size: int  # bytes
    shares: Mapping[int, int]  # GPU index -> bytes given to this member; {} = CPU
    weights: int = 0  # bytes of weights within `size` (0: unknown)

    @property
    def device(self) -> str:
        """`cpu`, `cuda:N`, or `auto` (split: from_pretrained's device_map="auto" with `max_memory`)."""
        if not self.shares:
            return "cpu"
        return f"cuda:{next(iter(self.shares))}" if len(self.shares) == 1 else "auto"

    @property
    def max_memory(self) -> dict[int, int] | None:
        """For a split: the weights' part of each GPU's share (accelerate counts weights only), so each GPU
        keeps room for the KV cache of the layers it holds."""
        if len(self.shares) < 2:
            return None
        part = self.weights / self.size if self.weights else 1.0
        return {g: int(b * part) for g, b in self.shares.items()}


@dataclass(frozen=True)
class Plan:
    slots: tuple[Slot, ...]  # in member order
    left: tuple[int, ...]  # per GPU: bytes still free after the plan (CUDA context already taken)


def plan(needs: Sequence[Need], free: Sequence[int], context_bytes: int = CUDA_CONTEXT,
         ram: int | None = None) -> Plan:
    """`free`: bytes free on each GPU (empty: no GPU, so the CPU, checked against `ram` bytes when given).
    Raises LoadError when the members cannot fit."""
    if not free:
        return on_cpu(needs, ram)
    usable = [max(f - context_bytes, 0) for f in free]
    choice = {n.member: 0 for n in needs}
    while True:
        slots, left, stuck = pack(needs, choice, usable)
        if stuck is None:
            break
        smaller = [n for n in needs if choice[n.member] + 1 < len(n.allowed)]
        if not smaller:
            raise LoadError(shortfall(stuck, needs, choice, left, usable, len(slots)))
        biggest = max(smaller, key=lambda n: (size_of(n, choice), -n.member))
        choice[biggest.member] += 1
    if upgrade(needs, choice, usable):
        slots, left, _ = pack(needs, choice, usable)
    return Plan(tuple(sorted(slots, key=lambda s: s.member)), tuple(left))


def on_cpu(needs: Sequence[Need], ram: int | None) -> Plan:
    """Everyone on the CPU in the format asked for (auto: the checkpoint's; quantizing on the CPU is slow)."""
    slots = tuple(Slot(n.member, n.name, n.allowed[0], n.sizes[n.allowed[0]], {}, n.weights.get(n.allowed[0], 0))
                  for n in sorted(needs, key=lambda n: n.member))
    total = sum(s.size for s in slots)
    if ram is not None and total > ram:
        sizes = ", ".join(f"{s.name} {gb(s.size)} as {s.dtype}" for s in slots)
        raise LoadError(f"no GPU, and the members need {gb(total)} of RAM ({sizes}) with {gb(ram)} available: "
                        f"short by {gb(total - ram)}. Use fewer or smaller members, or dtype 8bit/4bit "
                        "(bitsandbytes runs on the CPU, slowly)")
    return Plan(slots, ())


def upgrade(needs: Sequence[Need], choice: dict[int, int], usable: Sequence[int]) -> bool:
    """Step members back up (biggest first) while the set still fits: the step-down is greedy and can
    overshoot. Returns whether anything changed."""
    changed = False
    for need in sorted(needs, key=lambda n: (-n.sizes[n.allowed[0]], n.member)):
        while choice[need.member] > 0:
            choice[need.member] -= 1
            if pack(needs, choice, usable)[2] is not None:
                choice[need.member] += 1
                break
            changed = True
    return changed


def size_of(need: Need, choice: Mapping[int, int]) -> int:
    return need.sizes[need.allowed[choice[need.member]]]


def pack(needs: Sequence[Need], choice: Mapping[int, int], usable: Sequence[int]):
    """First-fit-decreasing. Returns (slots, bytes left per GPU, the first member that did not fit or None)."""
    left = list(usable)
    slots = []
    for need in sorted(needs, key=lambda n: (-size_of(n, choice), n.member)):
        size, dtype = size_of(need, choice), need.allowed[choice[need.member]]
        gpu = next((g for g, room in enumerate(left) if room >= size), None)
        if gpu is not None:
            shares = {gpu: size}
        elif sum(left) >= size:
            shares = split(size, left)
        else:
            return slots, left, need
        for g, share in shares.items():
            left[g] -= share
        slots.append(Slot(need.member, need.name, dtype, size, shares, need.weights.get(dtype, 0)))
    return slots, left, None


def split(size: int, left: Sequence[int]) -> dict[int, int]:
    """Spread `size` bytes over the GPUs with the most room first (fewest pieces, fewest hops per token)."""
    shares = {}
    for g in sorted(range(len(left)), key=lambda g: -left[g]):
        if size <= 0:
            break
        take = min(size, left[g])
        if take > 0:
            shares[g] = take
            size -= take
    return dict(sorted(shares.items()))


def shortfall(stuck: Need, needs: Sequence[Need], choice: Mapping[int, int], left: Sequence[int],
              usable: Sequence[int], placed: int) -> str:
    size, dtype = size_of(stuck, choice), stuck.allowed[choice[stuck.member]]
    room = sum(left)
    where = f"{len(usable)} GPU{'s' if len(usable) > 1 else ''} ({gb(sum(usable))} usable"
    where += f", {gb(room)} left after {placed} bigger member{'s' if placed > 1 else ''})" if placed else ")"
    text = (f"cannot place member {stuck.member} {stuck.name!r}: it needs {gb(size)} as {dtype} on {where}; "
            f"short by {gb(size - room)}")
    alone = [d for d in ("8bit", "4bit") if d in stuck.sizes and stuck.sizes[d] <= room and d != dtype]
    if alone:
        return f"{text}. Try dtype: {alone[0]} for it ({gb(stuck.sizes[alone[0]])})"
    for q in ("8bit", "4bit"):
        total = sum(n.sizes.get(q, size_of(n, choice)) for n in needs)
        if total <= sum(usable):
            return f"{text}. Try dtype: {q} (or auto) for every member ({gb(total)} in all)"
    return (f"{text}. Even all at 4bit the {len(needs)} members need {gb(total)} against {gb(sum(usable))}: "
            "use fewer or smaller members, a shorter context, or a bigger GPU")


def gb(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def describe(p: Plan) -> list[str]:
    """One line per member: `name: dtype on device (size)`, for logs, the UI and docs/placement.md."""
    out = []
    for s in p.slots:
        where = s.device if len(s.shares) < 2 else " + ".join(f"cuda:{g} {gb(b)}" for g, b in s.shares.items())
        out.append(f"{s.name}: {s.dtype} on {where} ({gb(s.size)})")
    return out
