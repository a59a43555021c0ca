"""MX routing over real DNS: a dnspython resolver asking a loopback DNS server."""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rrset
import pytest

from bounceflow_sender.outcomes import Outcome
from bounceflow_sender.routing import Router
from bounceflow_sender.settings import SenderSettings

ZONE = {
    ("two-mx.test.", "MX"): ["20 backup.two-mx.test.", "10 primary.two-mx.test."],
    ("null-mx.test.", "MX"): ["0 ."],
    ("no-mx.test.", "A"): ["192.0.2.10"],
    ("only-aaaa.test.", "AAAA"): ["2001:db8::1"],
    ("nothing.test.", "TXT"): ["\"v=spf1 -all\""],
}
SERVFAIL = {"broken.test."}


class LoopbackDns(asyncio.DatagramProtocol):
    """Answers from ZONE: NXDOMAIN for unknown names, empty NOERROR for a missing type."""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name, rdtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        if name in SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in ZONE:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, *ZONE[(name, rdtype)]))
        elif not any(n == name for n, _ in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def router():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(LoopbackDns, local_addr=("127.0.0.1", 0))
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = transport.get_extra_info("sockname")[1]
    yield Router(SenderSettings(sender_dns_timeout=2.0), resolver)
    transport.close()


async def test_mx_hosts_in_preference_order(router):
    route = await router.route("two-mx.test")
    assert [hop.host for hop in route.hops] == ["primary.two-mx.test", "backup.two-mx.test"]
    assert all(hop.port == 25 for hop in route.hops)


async def test_null_mx_fails_as_notaccept(router):
    outcome = await router.route("null-mx.test")
    assert isinstance(outcome, Outcome)
    assert (outcome.status, outcome.reason, outcome.stage) == ("failed", "notaccept", "route")


@pytest.mark.parametrize("domain", ["no-mx.test", "only-aaaa.test"])
async def test_no_mx_falls_back_to_the_domains_address(router, domain):
    route = await router.route(domain)
    assert [hop.host for hop in route.hops] == [domain]


async def test_no_mx_and_no_address_fails_as_hostunknown(router):
    outcome = await router.route("nothing.test")
    assert (outcome.status, outcome.reason) == ("failed", "hostunknown")


async def test_nxdomain_fails_as_hostunknown(router):
    outcome = await router.route("does-not-exist.test")
    assert (outcome.status, outcome.reason) == ("failed", "hostunknown") and "NXDOMAIN" in outcome.reply_text


async def test_dns_server_failure_defers(router):
    outcome = await router.route("broken.test")
    assert (outcome.status, outcome.reason) == ("deferred", "networkerror")


async def test_static_routes_win_over_dns():
    router = Router(SenderSettings(sender_static_routes={"two-mx.test": "127.0.0.1:2600"}))
    route = await router.route("two-mx.test")
    assert [hop.key for hop in route.hops] == ["127.0.0.1:2600"]
