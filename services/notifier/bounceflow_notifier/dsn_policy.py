"""Which incoming bounces are forwarded to the customer, and to where (pure).

The rules come from the seeds (`smtpeter-bounce-protocol-nl.md`,
`smtpeter-bounce-tracking.md`), see docs/forwarding.md:

- The target is the customer's own envelope address. An empty envelope
  (`MAIL FROM:<>` or no `envelope` over REST) means "I want no bounces":
  nothing is forwarded, not even to the account's forward address; the
  bounce is still logged and sent to the webhooks.
- The account's `forward_address` is used when the message has no envelope
  of its own that we know of: a bounce whose original message we could not
  look up (`envelope_from` is None) but whose account is known.
- DSNs (`dsn-failure`, `dsn-delay`, `dsn-success`) follow the customer's
  NOTIFY: NEVER forwards none; FAILURE / DELAY / SUCCESS forward only those;
  no NOTIFY at all is the RFC 3461 default, FAILURE and DELAY.
- Everything else that comes back to the envelope (out-of-office replies,
  unrecognised MTA bounces, unknown mail, complaints) is forwarded whatever
  NOTIFY says: the seed's NOTIFY=NEVER example still wants its auto-replies.
"""

from __future__ import annotations

from dataclasses import dataclass

from bounceflow.accounts import Account
from bounceflow.models import Category, ClassifiedBounce, DsnRequest

DSN_CATEGORY_NOTIFY: dict[str, str] = {
    "dsn-failure": "FAILURE",
    "dsn-delay": "DELAY",
    "dsn-success": "SUCCESS",
}
"""The NOTIFY value that asks for each kind of DSN."""

RFC3461_DEFAULT_NOTIFY = frozenset({"FAILURE", "DELAY"})
"""What an MTA sends when no NOTIFY was given (RFC 3461 §4.1: FAILURE, DELAY at its discretion)."""


@dataclass(frozen=True)
class ForwardDecision:
    """Whether to forward one bounce, where to, and why (the why goes to the logs)."""

    forward: bool
    target: str | None
    why: str


def notify_wants(dsn: DsnRequest, category: Category) -> bool:
    """Whether the customer's NOTIFY asks for a DSN of this category.

    Non-DSN categories are not governed by NOTIFY and always return True.
    """
    wanted = DSN_CATEGORY_NOTIFY.get(category)
    if wanted is None:
        return True
    notify = RFC3461_DEFAULT_NOTIFY if dsn.notify is None else frozenset(dsn.notify)
    if "NEVER" in notify:
        return False
    return wanted in notify


def forward_target(bounce: ClassifiedBounce, account: Account | None) -> tuple[str | None, str]:
    """The address a bounce would be forwarded to, and which rule chose it."""
    if bounce.envelope_from:
        return bounce.envelope_from, "the message's envelope"
    if bounce.envelope_from == "":
        return None, "the message was sent without an envelope (<>): the customer wants no bounces"
    if account is not None and account.forward_address:
        return account.forward_address, "the account's forward address (message envelope unknown)"
    return None, "no envelope known and no forward address"


def decide_forward(bounce: ClassifiedBounce, account: Account | None) -> ForwardDecision:
    """Apply the forwarding rules to one classified bounce."""
    target, why = forward_target(bounce, account)
    if target is None:
        return ForwardDecision(False, None, why)
    category = bounce.classification.category
    if not notify_wants(bounce.dsn, category):
        notify = ",".join(bounce.dsn.notify) if bounce.dsn.notify is not None else "default"
        return ForwardDecision(False, target, f"{category} not requested by NOTIFY={notify}")
    if category in DSN_CATEGORY_NOTIFY:
        return ForwardDecision(True, target, f"{category} requested by NOTIFY ({why})")
    return ForwardDecision(True, target, f"{category} is always forwarded ({why})")
