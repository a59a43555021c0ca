"""SMTP session transcripts in Sendmail-style bounces (Sendmail, V5 sendmail, and
MTAs that copied its format), read per recipient.

A transcript interleaves sessions with several hosts:

    While talking to mx.example.org:
    >>> RCPT To:<bob@example.org>
    <<< 550 5.1.1 User unknown
    550 <bob@example.org>... User unknown

Each `>>> COMMAND` line is answered by the `<<< reply` lines after it, and the
`NNN <address>... text` lines that follow name the recipients that exchange
failed. Without this pairing a recipient picks up the text of its neighbours
(another recipient's reply, another host's greeting) and the wrong reason.
"""

from __future__ import annotations

import re

# `550 <bob@example.org>... User unknown` or `550 example.org (smtp)... Host unknown`
RECIPIENT_LINE = re.compile(r"^\s*\d{3} <?[^\s<>]+@[^\s<>]+>?\.\.\. ")
# Where the text for one recipient ends: a new session, a new command, another result line.
_BOUNDARY = re.compile(r"^\s*(?:while talking to\b|>>> |\d{3} <?[^\s<>]+>?(?: \(\w+\))?\.\.\. )", re.I)
_LOOK_BACK = 12
_RESULT_ANYWHERE = re.compile(r"(?:^|\s)\d{3} <?[^\s<>]+@[^\s<>]+>?\.\.\. ")


def is_result(diagnostic: str) -> bool:
    """True when a (squeezed) diagnostic holds a transcript's per-recipient result line."""
    return _RESULT_ANYWHERE.search(diagnostic) is not None


def is_command(line: str) -> bool:
    """A `>>> COMMAND` line: the client's side of the transcript."""
    return line.lstrip().startswith(">>> ")


def ends_paragraph(line: str) -> bool:
    """True when `line` starts another recipient's or session's text."""
    return _BOUNDARY.match(line) is not None


def exchange_before(lines: list[str], i: int) -> str:
    """What a result line i reports on: the session lines just above it.

    That is the `>>>` command and `<<<` reply of its session, host-level lines
    (`421 host (smtp)... Deferred`) and local delivery agents' words (`mail.local:
    unknown user`). Walks back to another recipient's result line, the session
    header, a blank line or a section rule; '' when line i is no result line.
    """
    if not RECIPIENT_LINE.match(lines[i]):
        return ""
    j = i
    while j > 0 and j > i - _LOOK_BACK:
        line = lines[j - 1].strip()
        if not line or line.startswith("---") or RECIPIENT_LINE.match(line) or line.lower().startswith("while talking to"):
            break
        j -= 1
    return " ".join(x.strip() for x in lines[j:i])
