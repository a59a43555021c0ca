"""Signed VERP addresses: `b.<message_id>.<sig>@<bounce-domain>`.

The message id travels out in MAIL FROM and comes back in the RCPT TO of the
bounce. `sig` is a truncated HMAC-SHA256 of the id, base32 lower-case because
some MTAs fold the case of local parts. Several secrets may be valid at once
(the first signs, the rest still verify) so a secret can be rotated without
losing the bounces of mail already sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "b"
SIG_LENGTH = 10  # 50 bits of HMAC; enough against guessing at SMTP speed.
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower-case


_B32_TO_ID = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ID_ALPHABET.encode())


def new_message_id() -> str:
    """A 26-char, lower-case, time-ordered id (ULID layout) usable in a local part."""
    return encode_id((int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))


def encode_id(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 digits, most significant first.

    26 digits hold 130 bits: the value shifted left by 6 fills 17 bytes with two
    zero bits in front, which base64's C encoder turns into the same digits (in
    its alphabet) that repeated divmod by 32 would give, several times faster.
    """
    return base64.b32encode((value << 6).to_bytes(17, "big"))[:26].translate(_B32_TO_ID).decode()


def _sign(message_id: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), message_id.encode(), hashlib.sha256).digest()
    # 10 base32 digits are the first 50 bits: encoding the first 10 bytes gives the same digits.
    return base64.b32encode(digest[:10]).decode().lower()[:SIG_LENGTH]


@dataclass(frozen=True)
class VerpCodec:
    """Builds and verifies VERP addresses with the configured secrets."""

    secrets: Sequence[str]

    def __post_init__(self) -> None:
        if not self.secrets or not all(self.secrets):
            raise ValueError("VERP needs at least one non-empty secret")

    def address(self, message_id: str, domain: str) -> str:
        """The envelope sender to use for `message_id` on `domain`."""
        if "." in message_id or "@" in message_id:
            raise ValueError(f"message id {message_id!r} cannot be put in a VERP address")
        return f"{PREFIX}.{message_id}.{_sign(message_id, self.secrets[0])}@{domain}"

    def message_id(self, address: str, domains: Sequence[str]) -> str | None:
        """The message id of a VERP address on one of `domains`, or None.

        None means: not ours (other domain, wrong form, bad signature).
        Comparison is case-insensitive; signatures are compared in constant time.
        """
        local, sep, domain = address.strip().strip("<>").rpartition("@")
        if not sep or domain.lower() not in {d.lower() for d in domains}:
            return None
        parts = local.lower().split(".")
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1]:
            return None
        message_id, sig = parts[1], parts[2]
        for secret in self.secrets:
            if hmac.compare_digest(_sign(message_id, secret), sig):
                return message_id
        return None
