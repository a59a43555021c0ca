"""`bounceflow.smtp_addresses.FastAddressParsing` must answer MAIL/RCPT addresses as aiosmtpd does.

The ingress, the bounce-receiver and the devkit's servers all mix it in;
this is the one place that checks it against aiosmtpd's own `_getaddr`.
"""

from __future__ import annotations

import importlib

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from bounceflow.smtp_addresses import FastAddressParsing


class FastSMTP(FastAddressParsing, SMTP):
    pass


ADDRESS_ARGS = [
    "", "<>", "<> SIZE=10", "<>  X", "<a@b.c>", "<a@b.c> SIZE=1 BODY=8BITMIME", "<A.B+c=d@Ex-ample.COM>x",
    "<a@b.c>\tSIZE=1", "<a@b.c>  (comment) SIZE=1", "<a@b.c> \x0bSIZE=1", "<a@b.c>(c)", "<a@b.c>>", "<a@b.c >",
    " <a@b.c>", "a@b.c", "a@b.c SIZE=1", "<a.@b.c>", "<.a@b.c>", "<a..b@c>", "<a@b..c>", "<a@-b.c>", "<a@b.c.>",
    '<"a b"@c.d>', "<a@[1.2.3.4]>", "<@x,@y:a@b.c>", "<é@b.c>", "<a@bé.c>", "<a@b", "<a>", "<@b.c>", "<a@>",
    "<" + "x" * 64 + "@b.c>", "<" + "x" * 65 + "@b.c>", "<b.01hx.abc@bounces.test> SIZE=963",
    "<a@b.c> NOTIFY=NEVER ORCPT=rfc822;x@y",
]
_ADDR_PIECES = st.sampled_from(list("ab.@<>- \t()\"[]+=,:;é\\") + ["x@y.z", "<a@b.c>", "<>"])


def _getaddr_outcome(server: SMTP, arg: str):
    try:
        return server._getaddr(arg)
    except Exception as exc:  # email's parser has bugs of its own; the shortcut must share them
        return type(exc)


@pytest.mark.parametrize("arg", ADDRESS_ARGS)
def test_address_shortcut_agrees_with_aiosmtpd(arg):
    assert _getaddr_outcome(FastSMTP(object()), arg) == _getaddr_outcome(SMTP(object()), arg)


@given(st.lists(_ADDR_PIECES, max_size=12).map("".join))
def test_address_shortcut_agrees_with_aiosmtpd_on_anything(arg):
    assert _getaddr_outcome(FastSMTP(object()), arg) == _getaddr_outcome(SMTP(object()), arg)


@pytest.mark.parametrize("server", ["bounceflow_ingress.smtp_server.DsnSMTP",
                                    "bounceflow_bounce_receiver.smtp_server.ReceiverSMTP",
                                    "bounceflow_devkit.smtp_server.DsnSMTP"])
def test_every_smtp_server_uses_the_shortcut(server):
    module, _, name = server.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), FastAddressParsing)
