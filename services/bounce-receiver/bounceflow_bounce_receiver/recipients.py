"""Which RCPT TO addresses the MX takes: the pure decision, no sockets.

We accept a recipient only if it is a VERP address with a valid signature on
one of our bounce domains, or a configured role address (postmaster, abuse)
on one of them. Everything else is refused, so we never accept mail we would
have to bounce ourselves (no backscatter). The result says why, for the reply
log and the metrics.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from bounceflow.verp import PREFIX, VerpCodec


class Refusal(str, enum.Enum):
    """Why a recipient was refused; the values are metric labels."""

    UNKNOWN_DOMAIN = "unknown_domain"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True)
class RecipientDecision:
    """The outcome for one RCPT: accepted (VERP or role address) or refused with a reason."""

    address: str
    message_id: str | None = None
    role: str | None = None
    refusal: Refusal | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class RecipientPolicy:
    """Decides RCPTs for our bounce domains with the configured VERP secrets."""

    codec: VerpCodec
    domains: Sequence[str]
    role_addresses: Sequence[str] = ("postmaster", "abuse")

    def decide(self, address: str) -> RecipientDecision:
        """Accept a signed VERP address or a role address on our domains; refuse the rest."""
        address = address.strip().strip("<>")
        local, at, domain = address.rpartition("@")
        roles = {r.lower() for r in self.role_addresses}
        if not at:
            # RFC 5321 4.5.1: a bare "Postmaster" must be accepted without a domain.
            if address.lower() == "postmaster" and "postmaster" in roles:
                return RecipientDecision(address, role="postmaster")
            return RecipientDecision(address, refusal=Refusal.MALFORMED)
        if domain.lower() not in {d.lower() for d in self.domains}:
            return RecipientDecision(address, refusal=Refusal.UNKNOWN_DOMAIN)
        if local.lower() in roles:
            return RecipientDecision(address, role=local.lower())
        if not _looks_like_verp(local):
            return RecipientDecision(address, refusal=Refusal.MALFORMED)
        message_id = self.codec.message_id(address, self.domains)
        if message_id is None:
            return RecipientDecision(address, refusal=Refusal.BAD_SIGNATURE)
        return RecipientDecision(address, message_id=message_id)


def _looks_like_verp(local: str) -> bool:
    """`b.<id>.<sig>` in any case: the form, not the signature."""
    parts = local.lower().split(".")
    return len(parts) == 3 and parts[0] == PREFIX and all(parts)
