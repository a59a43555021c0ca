"""The RCPT policy of the MX, without sockets: what is ours and why the rest is refused."""

import pytest

from bounceflow.verp import VerpCodec, new_message_id
from bounceflow_bounce_receiver.recipients import RecipientPolicy, Refusal

DOMAINS = ["bounces.localhost", "Bounces.Example.NET"]


def policy(secrets=("current",), roles=("postmaster", "abuse")) -> RecipientPolicy:
    return RecipientPolicy(VerpCodec(list(secrets)), DOMAINS, roles)


def test_signed_verp_address_is_accepted_with_its_message_id():
    message_id = new_message_id()
    address = VerpCodec(["current"]).address(message_id, "bounces.localhost")
    decision = policy().decide(address)
    assert decision.accepted and decision.message_id == message_id and decision.role is None


@pytest.mark.parametrize("fold", [str.upper, str.title, lambda a: f"<{a}>"])
def test_case_and_angle_brackets_do_not_matter(fold):
    message_id = new_message_id()
    address = VerpCodec(["current"]).address(message_id, "bounces.example.net")
    assert policy().decide(fold(address)).message_id == message_id


def test_rotated_secret_still_verifies_while_configured():
    message_id = new_message_id()
    old_address = VerpCodec(["old"]).address(message_id, "bounces.localhost")
    assert policy(secrets=("new", "old")).decide(old_address).message_id == message_id
    assert policy(secrets=("new",)).decide(old_address).refusal is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    "address, refusal",
    [
        ("b.{id}.{sig}@evil.example", Refusal.UNKNOWN_DOMAIN),
        ("b.{id}.{sig}@bounces.localhost.evil.example", Refusal.UNKNOWN_DOMAIN),
        ("b.{id}.aaaaaaaaaa@bounces.localhost", Refusal.BAD_SIGNATURE),
        ("b.{other}.{sig}@bounces.localhost", Refusal.BAD_SIGNATURE),
        ("alice@bounces.localhost", Refusal.MALFORMED),
        ("b.{id}@bounces.localhost", Refusal.MALFORMED),
        ("b.{id}.{sig}.x@bounces.localhost", Refusal.MALFORMED),
        ("x.{id}.{sig}@bounces.localhost", Refusal.MALFORMED),
        ("b..{sig}@bounces.localhost", Refusal.MALFORMED),
        ("no-at-sign", Refusal.MALFORMED),
        ("abuse", Refusal.MALFORMED),
    ],
)
def test_everything_else_is_refused_with_its_reason(address, refusal):
    message_id = new_message_id()
    sig = VerpCodec(["current"]).address(message_id, "x").split("@")[0].split(".")[2]
    address = address.format(id=message_id, sig=sig, other=new_message_id())
    decision = policy().decide(address)
    assert not decision.accepted and decision.refusal is refusal and decision.message_id is None


@pytest.mark.parametrize("address", ["postmaster@bounces.localhost", "ABUSE@bounces.example.net", "Postmaster"])
def test_role_addresses_are_accepted_without_a_message_id(address):
    decision = policy().decide(address)
    assert decision.accepted and decision.message_id is None and decision.role in {"postmaster", "abuse"}


def test_role_addresses_are_configurable_and_only_on_our_domains():
    assert policy(roles=("postmaster",)).decide("abuse@bounces.localhost").refusal is Refusal.MALFORMED
    assert policy().decide("postmaster@evil.example").refusal is Refusal.UNKNOWN_DOMAIN
    assert policy(roles=()).decide("Postmaster").refusal is Refusal.MALFORMED
