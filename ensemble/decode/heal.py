"""Token healing for a completion prompt that ends in white space.

A few-shot prompt such as `Q: ...\\nA: ` ends in a space that every BPE and SentencePiece vocabulary folds
into the next word (` Paris` is one token; a lone ` ` followed by `Paris` is a path training rarely shows).
Conditioned on the lone space, small models answer with a newline, an empty answer or a second space.
Guidance's token healing and llama.cpp's `--token-healing` back the prompt up and constrain the first
generated token; here the trailing spaces and tabs are backed up (`prompting.split_trailing_space`), and
the answer's first tokens must spell them. They are not shown: the user typed them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Healing:
    """Which tokens of one shared space may come next while the answer still owes `rest` (the backed-up
    white space): those that spell a prefix of it or start with it. One mask per `rest`, built once with a
    pass over the vocabulary, then only indexed per step."""

    def __init__(self, pieces: Sequence[bytes]):
        self.pieces = pieces
        self.masks: dict[bytes, torch.Tensor] = {}

    def allowed(self, rest: bytes) -> torch.Tensor:
        """[S] bool over the shared space."""
        if rest not in self.masks:
            self.masks[rest] = torch.tensor([bool(p) and (p.startswith(rest) or rest.startswith(p))
                                             for p in self.pieces], dtype=torch.bool)
        return self.masks[rest]


def owed(forced: bytes, answer: bytes) -> bytes:
    """The part of the backed-up white space the answer has not spelled yet."""
    return forced[len(answer):]
