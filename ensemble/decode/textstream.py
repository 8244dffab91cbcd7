"""Bytes in, finished text out (TGI `decode_token`, mlx-lm `StreamingDetokenizer`).

The engine chooses byte strings, which may end inside a UTF-8 character (a `<0xE6>` byte-fallback token,
a byte-level BPE token holding half an emoji). Only complete characters are released, so no event ever
carries a `\\ufffd`. Text that could be the start of a stop string is held back until it can't be.
Bytes that can never form valid UTF-8 are dropped.
"""

from __future__ import annotations

import codecs


class TextStream:
    def __init__(self, stops: tuple[str, ...] = ()):
        self.stops = tuple(s for s in stops if s)
        self.text = ""  # everything released so far
        self.stopped = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("ignore")
        self._held = ""

    def push(self, data: bytes) -> str:
        """Add bytes; return the text that became final (possibly "")."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(data)
        return self._release(final=False)

    def finish(self) -> str:
        """End of generation: release what is held, except a stop string and what follows it."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(b"", final=True)
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        hits = [i for i in (self._held.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self._held, self.stopped = self._held[: min(hits)], "", True
        else:
            keep = 0 if final else self._stop_prefix_len()
            cut = len(self._held) - keep
            out, self._held = self._held[:cut], self._held[cut:]
        self.text += out
        return out

    def _stop_prefix_len(self) -> int:
        """Length of the longest tail of the held text that is a proper prefix of a stop string."""
        best = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self._held)), best, -1):
                if self._held.endswith(s[:n]):
                    best = n
                    break
        return best
