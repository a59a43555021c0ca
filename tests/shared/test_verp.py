"""Signed VERP addresses: what the bounce-receiver accepts and what it refuses."""

import pytest

from hypothesis import given
from hypothesis import strategies as st

from bounceflow.verp import SIG_LENGTH, VerpCodec, encode_id, new_message_id

DOMAINS = ["bounces.localhost", "bounces.example.net"]


def test_round_trip_and_case_folding():
    codec = VerpCodec(["secret-1"])
    message_id = new_message_id()
    address = codec.address(message_id, "bounces.localhost")
    local = address.split("@")[0]
    assert local.startswith("b.") and local == local.lower()
    assert len(local.split(".")[2]) == SIG_LENGTH
    assert codec.message_id(address, DOMAINS) == message_id
    assert codec.message_id(address.upper(), DOMAINS) == message_id  # MTAs that fold case
    assert codec.message_id(f"<{address}>", DOMAINS) == message_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda a: a.replace("@bounces.localhost", "@evil.example"),  # not our domain
        lambda a: a[: a.index("@") - 1] + ("a" if a[a.index("@") - 1] != "a" else "b") + a[a.index("@"):],  # sig
        lambda a: "x" + a,  # wrong prefix
        lambda a: a.replace("b.", "b..", 1),  # wrong shape
        lambda a: "postmaster@bounces.localhost",
        lambda a: "no-at-sign",
    ],
)
def test_tampered_addresses_are_refused(mangle):
    codec = VerpCodec(["secret-1"])
    address = codec.address(new_message_id(), "bounces.localhost")
    assert codec.message_id(mangle(address), DOMAINS) is None


def test_signature_of_another_secret_is_refused():
    address = VerpCodec(["other"]).address(new_message_id(), "bounces.localhost")
    assert VerpCodec(["secret-1"]).message_id(address, DOMAINS) is None


def test_rotation_keeps_old_addresses_valid_and_signs_with_the_new_secret():
    message_id = new_message_id()
    old_address = VerpCodec(["old"]).address(message_id, "bounces.localhost")
    rotated = VerpCodec(["new", "old"])
    assert rotated.message_id(old_address, DOMAINS) == message_id
    assert rotated.address(message_id, "bounces.localhost") == VerpCodec(["new"]).address(message_id, "bounces.localhost")
    assert VerpCodec(["new"]).message_id(old_address, DOMAINS) is None  # grace period over


def test_ids_are_unique_lowercase_and_time_ordered():
    ids = [new_message_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and i == i.lower() and "." not in i for i in ids)
    assert ids[0][:10] <= ids[-1][:10]


def test_codec_needs_a_secret_and_a_usable_id():
    with pytest.raises(ValueError):
        VerpCodec([])
    with pytest.raises(ValueError):
        VerpCodec(["s"]).address("a.b", "bounces.localhost")


def _divmod_digits(value: int) -> str:
    """The plain definition: 26 base-32 digits by repeated division."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append(alphabet[digit])
    return "".join(reversed(digits))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_encode_id_gives_the_digits_of_repeated_division(value):
    assert encode_id(value) == _divmod_digits(value)


def test_encode_id_at_the_edges():
    assert encode_id(0) == "0" * 26
    assert encode_id(2**128 - 1) == "7" + "z" * 25
    assert encode_id(31) == "0" * 25 + "z"


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_signature_is_the_head_of_the_whole_digest_in_base32(message_id, secret):
    import base64
    import hashlib
    import hmac

    from bounceflow.verp import _sign

    digest = hmac.new(secret.encode(), message_id.encode(), hashlib.sha256).digest()
    assert _sign(message_id, secret) == base64.b32encode(digest).decode().lower()[:SIG_LENGTH]
