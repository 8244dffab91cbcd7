"""The offline corpus: Python standard-library sources plus English prose shipped in installed packages.

Documents are whole files (a `.py` module, a package's long description in its `METADATA`, a `.md`/`.rst`
file). The held-out split is by document: a document is held out when the hash of its name says so, so no
block of a held-out file is ever trained on. Documents are cut into blocks of about `block_chars`
characters at line ends; every model sees the same block text.

Corpus seeds draw *different* blocks: the training pool is shuffled once (a fixed permutation) and seed k
takes the k-th slice of it, so two seeds share no block (the spread between them is data-draw noise, not
order noise). The held-out blocks are the same for every seed. The corpus depends on this machine's Python
and installed packages, so a run pins the content hash of what it drew (`CorpusConfig.sha256`); another
machine that builds other blocks gets a one-line error instead of silently different data.
"""

from __future__ import annotations

import hashlib
import random
import site
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ConfigError

HELD_OUT_PER_MILLE = 100  # 10% of documents
SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "node_modules", "__pycache__", "_vendor", "lib2to3"}
PROSE_SUFFIXES = (".md", ".rst")
MIN_DOC_CHARS = 2_000


@dataclass(frozen=True)
class Block:
    doc: str  # document name, relative to its root
    index: int  # block number inside the document
    kind: str  # "code" or "prose"
    text: str

    @property
    def key(self) -> str:
        return f"{self.doc}#{self.index}"


@dataclass(frozen=True)
class CorpusConfig:
    block_chars: int = 1024
    train_blocks: int = 256
    held_out_blocks: int = 64
    seed: int = 0  # which slice of training blocks (seeds never share a block); never moves held-out
    sha256: str = ""  # content hash the drawn blocks must have ("" = not pinned)

    def __post_init__(self):
        if self.block_chars < 64 or self.train_blocks < 1 or self.held_out_blocks < 1 or self.seed < 0:
            raise ConfigError(f"corpus sizes and seed must be positive (block_chars >= 64): {self}")


def held_out(doc: str) -> bool:
    return int(hashlib.sha256(doc.encode()).hexdigest(), 16) % 1000 < HELD_OUT_PER_MILLE


def _skipped(path: Path, root: Path) -> bool:
    return any(part in SKIP_DIRS for part in path.relative_to(root).parts[:-1])


def code_documents() -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        if not _skipped(path, root) and not path.name.startswith("test_"):
            out.append((f"stdlib/{path.relative_to(root)}", path.read_text(errors="replace")))
    return out


def _metadata_body(text: str) -> str:
    """A METADATA file's long description: everything after the header block."""
    _, _, body = text.partition("\n\n")
    return body


def prose_documents() -> list[tuple[str, str]]:
    out = []
    for root in map(Path, sorted(set(site.getsitepackages()))):
        for path in sorted(root.rglob("*")):
            if not path.is_file() or "node_modules" in path.parts:
                continue
            if path.name == "METADATA":
                text = _metadata_body(path.read_text(errors="replace"))
            elif path.suffix in PROSE_SUFFIXES and "CHANGELOG" not in path.name.upper():
                text = path.read_text(errors="replace")
            else:
                continue
            out.append((f"site/{path.relative_to(root)}", text))
    return out


def split_blocks(doc: str, text: str, kind: str, block_chars: int) -> list[Block]:
    blocks, current, size = [], [], 0
    for line in text.splitlines(keepends=True):
        current.append(line[:block_chars])
        size += len(current[-1])
        if size >= block_chars:
            blocks.append("".join(current))
            current, size = [], 0
    if size >= block_chars // 2:  # a short tail would be a mostly-padding sequence
        blocks.append("".join(current))
    return [Block(doc, i, kind, t) for i, t in enumerate(blocks) if t.strip()]


@cache
def all_blocks(block_chars: int) -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """(train, held_out) blocks of every document, in a fixed order (read once per process)."""
    train, test = [], []
    for kind, docs in (("code", code_documents()), ("prose", prose_documents())):
        for doc, text in docs:
            if len(text) < MIN_DOC_CHARS:
                continue
            (test if held_out(doc) else train).extend(split_blocks(doc, text, kind, block_chars))
    return tuple(train), tuple(test)


def sample(cfg: CorpusConfig) -> tuple[list[Block], list[Block]]:
    """(train, held-out) blocks: half code and half prose in each; checked against `cfg.sha256`."""
    train, test = draw(*all_blocks(cfg.block_chars), cfg)
    check_hash(train, test, cfg.sha256)
    return train, test


def draw(pool_train, pool_test, cfg: CorpusConfig) -> tuple[list[Block], list[Block]]:
    """Seed k takes slice k of a fixed shuffle of the training pool; held-out is slice 0 of its own pool."""
    return _balanced(pool_train, cfg.train_blocks, cfg.seed), _balanced(pool_test, cfg.held_out_blocks, 0)


def content_hash(train: list[Block], test: list[Block]) -> str:
    """sha256 over every drawn block's split, key, kind and text, in order."""
    h = hashlib.sha256()
    for split, blocks in (("train", train), ("held-out", test)):
        for b in blocks:
            h.update("\x00".join((split, b.key, b.kind, b.text)).encode() + b"\x01")
    return h.hexdigest()


def check_hash(train: list[Block], test: list[Block], pinned: str) -> None:
    digest = content_hash(train, test)
    if pinned and digest != pinned:
        raise ConfigError(f"corpus content hash {digest[:16]} is not the pinned {pinned[:16]}: this machine's "
                          "Python or installed packages give other blocks, so results would not compare")


def _balanced(blocks, n: int, seed: int) -> list[Block]:
    rng = random.Random(0)  # one permutation for every seed: seeds are disjoint slices of it
    by_kind = {k: [b for b in blocks if b.kind == k] for k in ("code", "prose")}
    for group in by_kind.values():
        rng.shuffle(group)
    half = n // 2
    picked = (by_kind["code"][seed * (n - half):(seed + 1) * (n - half)]
              + by_kind["prose"][seed * half:(seed + 1) * half])
    if len(picked) < n:
        raise ConfigError(f"the corpus has only {len(picked)} blocks of the {n} asked for at seed {seed} "
                          f"({len(by_kind['code'])} code and {len(by_kind['prose'])} prose blocks in all)")
    return picked
