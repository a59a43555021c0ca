"""Forward an incoming bounce to the customer over SMTP with `MAIL FROM:<>`.

`forwarded_mime` (pure) makes what the customer receives: the bounce as
received, and for a DSN the fields restored to what the customer gave us:
the sender asked the next hop for ENVID = our message id, so
`Original-Envelope-Id` is set back to the customer's ENVID (or removed when
they gave none), `Original-Recipient` to their ORCPT; with RET=HDRS the
returned message is cut to its headers (text/rfc822-headers), whatever the
remote MTA returned. Other bounces are forwarded unchanged.

`Forwarder` sends it: static routes (`notifier_forward_routes`), a
smarthost, or the domain's MX from DNS, like the sender.
"""

from __future__ import annotations

import base64
import email
import email.policy
import random
from dataclasses import dataclass
from email.message import Message

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver

from bounceflow.models import ClassifiedBounce

from bounceflow_notifier.settings import NotifierSettings

FORWARD_HEADER = "X-Bounceflow-Forwarded"
SMTP_PORT = 25


def _header_block(message: Message) -> str:
    """The header section of a message, as text, without the body."""
    raw = message.as_bytes(policy=email.policy.compat32)
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, _ = raw.partition(separator)
        if found:
            return head.decode("utf-8", errors="replace") + "\n"
    return raw.decode("utf-8", errors="replace")


def _set_field(block: Message, name: str, value: str | None) -> None:
    """Replace (in place), add, or with None remove one DSN field."""
    if value is None:
        del block[name]
    elif name in block:
        block.replace_header(name, value)
    else:
        block[name] = value


def _orcpt_field(orcpt: str) -> str:
    addr_type, sep, address = orcpt.partition(";")
    if not sep:
        return f"rfc822;{orcpt.strip()}"
    return f"{addr_type.strip()};{address.strip()}"


def restore_dsn_fields(status_part: Message, envid: str | None, orcpt: str | None, our_envid: str | None) -> None:
    """Put the customer's ENVID/ORCPT back into a message/delivery-status part."""
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or not blocks:
        return
    per_message, per_recipient = blocks[0], blocks[1:]
    if envid is not None:
        _set_field(per_message, "Original-Envelope-Id", envid)
    elif our_envid is not None and (per_message.get("Original-Envelope-Id") or "").strip() == our_envid:
        _set_field(per_message, "Original-Envelope-Id", None)
    if orcpt is not None:
        for block in per_recipient:
            _set_field(block, "Original-Recipient", _orcpt_field(orcpt))


def cut_to_headers(returned: Message) -> None:
    """Turn a message/rfc822 part into text/rfc822-headers holding only its headers (RET=HDRS)."""
    inner = returned.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    headers = _header_block(inner) if isinstance(inner, Message) else ""
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Description"):
        del returned[name]
    returned["Content-Type"] = "text/rfc822-headers"
    returned["Content-Description"] = "Undelivered Message Headers"
    returned.set_payload(headers)


def forwarded_mime(bounce: ClassifiedBounce) -> bytes:
    """What is forwarded for this bounce (see the module docstring)."""
    raw = base64.b64decode(bounce.mime_b64)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    is_dsn = bounce.classification.category.startswith("dsn-")
    if not (is_dsn and message.get_content_type() == "multipart/report" and message.is_multipart()):
        return _with_trace(raw, bounce.event_id)
    for part in message.get_payload():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            restore_dsn_fields(part, bounce.dsn.envid, bounce.dsn.orcpt, bounce.message_id)
        elif content_type == "message/rfc822" and bounce.dsn.ret == "HDRS":
            cut_to_headers(part)
    return _with_trace(message.as_bytes(policy=email.policy.compat32), bounce.event_id)


def _with_trace(raw: bytes, event_id: str) -> bytes:
    """Prepend a header naming the bounce event, so the customer can match it to a webhook."""
    linesep = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    return f"{FORWARD_HEADER}: {event_id}".encode() + linesep + raw


@dataclass(frozen=True)
class ForwardResult:
    """One forwarding attempt: delivered, or an error and whether retrying can help."""

    ok: bool
    permanent: bool = False
    error: str | None = None
    host: str | None = None


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


class Forwarder:
    """Routes and sends forwarded bounces."""

    def __init__(self, settings: NotifierSettings, resolver: dns.asyncresolver.Resolver | None = None) -> None:
        self._routes = settings.notifier_forward_routes
        self._smarthost = settings.notifier_forward_smarthost
        self._helo = settings.notifier_helo_name
        self._timeout = settings.notifier_forward_timeout
        self._resolver = resolver or dns.asyncresolver.Resolver()

    async def hosts(self, address: str) -> list[tuple[str, int]] | str:
        """The hosts to try for `address`, best first, or why there are none."""
        domain = address.rpartition("@")[2].lower()
        static = self._routes.get(domain) or self._routes.get("*")
        if static:
            return [_host_port(static)]
        if self._smarthost:
            return [_host_port(self._smarthost)]
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            return f"{domain}: no such domain"
        except dns.resolver.NoAnswer:
            return [(domain, SMTP_PORT)]
        except dns.exception.DNSException as exc:
            return f"{domain}: MX lookup failed: {exc}"
        records = sorted((r.preference, random.random(), r.exchange.to_text().rstrip(".")) for r in answer)
        hosts = [(name, SMTP_PORT) for _, _, name in records if name]
        return hosts or f"{domain} publishes a null MX"

    def route_key(self, address: str) -> str:
        """Concurrency key before routing: the static route or smarthost, else the domain."""
        domain = address.rpartition("@")[2].lower()
        return self._routes.get(domain) or self._routes.get("*") or self._smarthost or f"mx:{domain}"

    async def send(self, address: str, mime: bytes) -> ForwardResult:
        """`MAIL FROM:<>`, `RCPT TO:<address>`, the MIME; first host that answers wins."""
        hosts = await self.hosts(address)
        if isinstance(hosts, str):
            return ForwardResult(False, hosts.endswith("no such domain") or "null MX" in hosts, hosts)
        last = ForwardResult(False, False, "no host tried")
        for host, port in hosts:
            try:
                client = aiosmtplib.SMTP(hostname=host, port=port, local_hostname=self._helo,
                                         timeout=self._timeout, start_tls=None, validate_certs=False)
                async with client:
                    await client.sendmail("", [address], mime)  # MAIL FROM:<>
                return ForwardResult(True, host=f"{host}:{port}")
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [e.code for e in exc.recipients]
                return ForwardResult(False, all(500 <= c < 600 for c in codes), f"{host}: {exc}", f"{host}:{port}")
            except aiosmtplib.SMTPResponseException as exc:
                if 500 <= exc.code < 600:
                    return ForwardResult(False, True, f"{host}: {exc.code} {exc.message}", f"{host}:{port}")
                last = ForwardResult(False, False, f"{host}: {exc.code} {exc.message}", f"{host}:{port}")
            except (aiosmtplib.SMTPException, OSError) as exc:
                last = ForwardResult(False, False, f"{host}:{port}: {type(exc).__name__}: {exc}", f"{host}:{port}")
        return last
