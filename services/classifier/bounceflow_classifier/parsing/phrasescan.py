"""Fast leftmost search for one of many phrases in lower-cased text.

Python's `re` tries every branch of a long alternation at every position of
the text, so a 40-phrase pattern over a 3 KB bounce costs tens of
microseconds. Most phrases contain a fixed word ("rcpt", "greeting",
"delayed"): `PhraseScan` derives that literal from each phrase once, and per
search compiles (and caches) an alternation of only the phrases whose
literal occurs in the text — usually none or one. The result is the same
match the full alternation would give: leftmost, ties to the earlier phrase.
"""

from __future__ import annotations

import re
from re import _parser as sre_parse  # the stdlib's own regex parser, to read literals out of phrases

_MIN_GATE = 3
_MAX_CACHED = 256


def required_literal(pattern: str) -> str | None:
    """The longest run of plain characters every match of `pattern` contains (None if < 3 chars)."""
    try:
        items = list(sre_parse.parse(pattern))
    except re.error:
        return None
    if len(items) == 1 and items[0][0] is sre_parse.BRANCH:
        return None  # a bare alternation has no single required run
    best, run = "", []
    for op, av in items + [(None, None)]:
        if op is sre_parse.LITERAL:
            run.append(chr(av))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best if len(best) >= _MIN_GATE else None


class PhraseScan:
    """An alternation of (label, phrase regex) searched through literal gates."""

    def __init__(self, phrases: list[tuple[str, str]]):
        self.labels = [label for label, _ in phrases]
        self.patterns = [pattern for _, pattern in phrases]
        gates = [required_literal(p) for p in self.patterns]
        self.always = tuple(i for i, g in enumerate(gates) if g is None)
        members: dict[str, tuple[int, ...]] = {}
        for i, g in enumerate(gates):
            if g is not None:
                members[g] = members.get(g, ()) + (i,)
        self.gates = tuple(members.items())  # (literal, phrase indexes): a tuple walks faster than dict items
        self._compiled: dict[tuple[int, ...], re.Pattern] = {}

    def search(self, low: str) -> tuple[str, re.Match] | None:
        """(label, match) of the leftmost phrase in `low` (lower-cased text), else None."""
        active = self.always
        for gate, members in self.gates:
            if gate in low:
                active += members
        if not active:
            return None  # the usual case: no phrase can occur
        rx = self._compiled.get(active)  # keyed as found; the same gates always give the same tuple
        if rx is None:
            if len(self._compiled) >= _MAX_CACHED:
                self._compiled.clear()
            rx = self._compiled[active] = re.compile(
                "|".join(f"(?P<p{i}>{self.patterns[i]})" for i in sorted(active)))  # table order: ties to the earlier phrase
        m = rx.search(low)
        return (self.labels[int(m.lastgroup[1:])], m) if m else None
