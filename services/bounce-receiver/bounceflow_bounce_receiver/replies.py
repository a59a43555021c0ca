"""Every SMTP reply the MX gives, by name (RFC 5321 codes, RFC 3463 enhanced codes)."""

from __future__ import annotations

SENDER_OK = "250 2.1.0 OK"
RCPT_OK = "250 2.1.5 OK"
QUEUED = "250 2.0.0 OK: {count} bounce(s) recorded"

NO_SUCH_USER = "550 5.1.1 No such user here"
MESSAGE_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
KAFKA_UNAVAILABLE = "451 4.3.0 Temporary failure, please try again later"
INTERNAL_ERROR = "451 4.3.0 Internal error, please try again later"
RATE_LIMITED = "450 4.7.1 Too many messages from your address, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"

# aiosmtpd's own answers to an oversized message (SIZE declared in MAIL, or
# too much DATA); the server replaces them with MESSAGE_TOO_BIG.
AIOSMTPD_TOO_BIG = frozenset(
    {
        "552 Error: message size exceeds fixed maximum message size",
        "552 Error: Too much mail data",
    }
)
