"""Stop strings over a stream of text, holding back only what could still become one."""

from __future__ import annotations


class StopBuffer:
    """Feed text as it is generated; get back what is safe to emit.

    Text that might be the start of a stop string is held until it is known
    either to be one (generation ends; the stop string itself is never emitted)
    or not to be one (it is released with the next piece).
    """

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        held = self._held + text
        for stop in self._stops:
            at = held.find(stop)
            if at != -1:
                self._held = ""
                self.stopped = True
                return held[:at]
        keep = self._longest_partial(held)
        self._held = held[len(held) - keep :] if keep else ""
        return held[: len(held) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _longest_partial(self, text: str) -> int:
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:size]):
                    best = size
                    break
        return best
