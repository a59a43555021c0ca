"""Fast leftmost search for one of many phrases in lower-cased text.

Python's `re` tries every branch of a long alternation at every position of
the text, so a 40-phrase pattern over a 3 KB bounce costs tens of
microseconds. Most phrases contain a fixed word ("rcpt", "greeting",
"delayed"), or one of a few ("(?:disabled|suspended|frozen)"): `PhraseScan`
derives those literals from each phrase once, and per search compiles (and
caches) an alternation of only the phrases whose literal occurs in the text —
usually none or one. The result is the same
match the full alternation would give: leftmost, ties to the earlier phrase.

`Substrings` finds which of a few hundred fixed strings (a whole table's
plain phrases and gate literals) occur in a text in one regex pass, instead
of one `in` test each.
"""

from __future__ import annotations

import re
from re import _parser as sre_parse  # the stdlib's own regex parser, to read literals out of phrases

_MIN_GATE = 3
_MAX_CACHED = 256


def gate_literals(pattern: str) -> tuple[str, ...] | None:
    """Literals one of which every match of `pattern` contains: its longest run of plain
    characters, else the alternatives of an alternation it cannot do without; None when
    there is no such run or alternation of 3 characters or more (the phrase is always tried)."""
    try:
        items = sre_parse.parse(pattern)
    except re.error:
        return None
    if items.state.flags & re.IGNORECASE:
        return None  # a literal matched in any case is not a substring of the lower-cased text
    return _gates_of(list(items))


def _gates_of(items: list) -> tuple[str, ...] | None:
    best, run = "", []
    alternations: list[tuple[str, ...]] = []
    for op, av in items + [(None, None)]:
        if op is sre_parse.LITERAL:
            run.append(chr(av))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
        if op is sre_parse.BRANCH:  # (?:a|b) in sequence: every match goes through one alternative
            options = [_gates_of(list(alternative)) for alternative in av[1]]
            if all(options):
                alternations.append(tuple(dict.fromkeys(lit for option in options for lit in option)))
        elif op is sre_parse.SUBPATTERN and not av[1] and not av[2]:  # a capturing group without flags
            inner = _gates_of(list(av[3]))
            if inner:
                alternations.append(inner)
    if len(best) >= _MIN_GATE:
        return (best,)
    # the alternation whose shortest literal is longest: the rarest in text
    return max(alternations, key=lambda literals: min(map(len, literals)), default=None)


class PhraseScan:
    """An alternation of (label, phrase regex) searched through literal gates."""

    def __init__(self, phrases: list[tuple[str, str]]):
        self.labels = [label for label, _ in phrases]
        self.patterns = [pattern for _, pattern in phrases]
        members: dict[str, tuple[int, ...]] = {}
        always = []
        for i, pattern in enumerate(self.patterns):
            literals = gate_literals(pattern)
            if literals is None:
                always.append(i)
            for literal in literals or ():
                members[literal] = members.get(literal, ()) + (i,)
        self.always = tuple(always)
        self.gates = tuple(members.items())  # (literal, phrase indexes): a tuple walks faster than dict items
        self._members = members
        self._compiled: dict[tuple[int, ...], re.Pattern] = {}
        self._each = [re.compile(pattern) for pattern in self.patterns]

    def search(self, low: str) -> tuple[str, re.Match] | None:
        """(label, match) of the leftmost phrase in `low` (lower-cased text), else None."""
        active = self._active(low)
        if not active:
            return None  # the usual case: no phrase can occur
        rx = self._compiled.get(active)  # keyed as found: the same literals in the text give the same tuple
        if rx is None:
            if len(self._compiled) >= _MAX_CACHED:
                self._compiled.clear()
            rx = self._compiled[active] = re.compile(
                "|".join(f"(?P<p{i}>{self.patterns[i]})" for i in sorted(set(active))))  # table order: ties to the earlier phrase
        m = rx.search(low)
        return (self.labels[int(m.lastgroup[1:])], m) if m else None

    def occurs(self, low: str, present: set[str] | None = None) -> bool:
        """True when one of the phrases occurs in `low` (which one, or where, does not matter).

        `present`, if given, holds every gate literal that occurs in `low` (see Substrings).
        Each phrase is searched on its own: one that starts with a literal lets the regex
        engine jump between occurrences of it, which an alternation does not.
        """
        active = self._active(low, present)
        return any(self._each[i].search(low) is not None for i in sorted(set(active)))

    def _active(self, low: str, present: set[str] | None = None) -> tuple[int, ...]:
        """Indexes of the phrases that may occur in `low`: the ungated ones and those whose
        gate literal occurs (in the order found, possibly repeated). `present`: see occurs."""
        active = self.always
        if present is None:
            for gate, members in self.gates:
                if gate in low:
                    active += members
        else:
            for gate in present:
                active += self._members.get(gate, ())
        return active


class Substrings:
    """Which of many fixed strings occur in a text, found by one trie-shaped regex.

    A search gives the longest string at the leftmost position where one starts; the
    other strings starting there are that one's prefixes, listed once; the next search
    starts one character further on.
    """

    def __init__(self, strings):
        strings = sorted(set(strings))
        self._rx = re.compile(_trie_pattern(strings))
        self._with_prefixes = {s: frozenset(p for p in strings if s.startswith(p)) for s in strings}

    def found_in(self, text: str) -> set[str]:
        """The strings that occur in text."""
        found: set[str] = set()
        search = self._rx.search
        m = search(text)
        while m is not None:
            found |= self._with_prefixes[m.group()]
            m = search(text, m.start() + 1)
        return found


def _trie_pattern(strings: list[str]) -> str:
    """A regex for the longest of `strings` at a position: a branch per next character,
    and an optional (greedy, so longer first) tail after each node where a string ends."""
    trie: dict = {}
    for string in strings:
        node = trie
        for ch in string:
            node = node.setdefault(ch, {})
        node[""] = {}  # a string ends here

    def pattern(node: dict) -> str:
        branches = [re.escape(ch) + pattern(child) for ch, child in node.items() if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return pattern(trie)
