"""Accounts file: hashes only, dev account creation, reload on change."""

import json
import os
import stat

import bounceflow.accounts as accounts_module
from bounceflow.accounts import (
    Account, AccountsFile, AccountStore, VerifiedLogins, Webhook, ensure_dev_account, hash_api_key,
    hash_password, new_webhook_secret, read_accounts, verify_password, write_accounts,
)


def test_password_hash_verifies_and_refuses():
    stored = hash_password("correct horse")
    assert "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("x", "garbage")


def test_dev_account_is_created_once_with_clear_credentials_outside_the_accounts_file(tmp_path):
    accounts, creds = tmp_path / "accounts.json", tmp_path / "dev-credentials.json"
    assert ensure_dev_account(accounts, creds) is True
    assert ensure_dev_account(accounts, creds) is False
    credentials = json.loads(creds.read_text())
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(accounts).st_mode) == 0o600
    assert credentials["smtp_password"] not in accounts.read_text()
    assert credentials["api_key"] not in accounts.read_text()
    store = AccountStore(accounts)
    assert store.authenticate_smtp("demo", credentials["smtp_password"]).name == "demo"
    assert store.authenticate_smtp("demo", "nope") is None
    assert store.authenticate_smtp("nobody", credentials["smtp_password"]) is None
    assert store.authenticate_api_key(credentials["api_key"]).bounce_domain == "bounces.localhost"
    assert store.authenticate_api_key("bf_wrong") is None


def test_store_rereads_the_file_when_it_changes(tmp_path):
    path = tmp_path / "accounts.json"
    write_accounts(path, AccountsFile(accounts=[Account(name="a", api_key_hashes=[hash_api_key("k1")])]))
    store = AccountStore(path, check_interval=0)
    assert store.authenticate_api_key("k2") is None
    secret = new_webhook_secret()
    write_accounts(path, AccountsFile(accounts=[
        Account(name="a", api_key_hashes=[hash_api_key("k1")]),
        Account(name="b", api_key_hashes=[hash_api_key("k2")],
                bounce_webhook=Webhook(url="http://127.0.0.1:1/h", secret=secret)),
    ]))
    os.utime(path, (1, 1))  # make sure the mtime differs even on coarse clocks
    assert store.authenticate_api_key("k2").name == "b"
    # Webhook secrets survive a write/read cycle (they are needed in clear to sign).
    assert read_accounts(path).accounts[1].bounce_webhook.secret.get_secret_value() == secret


def test_allowed_sender_domains():
    account = Account(name="a", allowed_sender_domains=["example.com"])
    assert account.may_send_as("info@example.com")
    assert account.may_send_as("info@mail.example.com")
    assert not account.may_send_as("info@example.org")
    assert not account.may_send_as("info@badexample.com")
    assert account.may_send_as("")  # <> is always allowed
    assert Account(name="b").may_send_as("anyone@anywhere.test")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _counting_scrypt(monkeypatch) -> list[int]:
    calls = [0]
    real = accounts_module.hashlib.scrypt

    def scrypt(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(accounts_module.hashlib, "scrypt", scrypt)
    return calls


def test_a_verified_login_is_not_hashed_again_until_the_ttl_ends(tmp_path, monkeypatch):
    path = tmp_path / "accounts.json"
    write_accounts(path, AccountsFile(accounts=[Account(name="a", smtp_username="a", smtp_password_hash=hash_password("pw"))]))
    clock = _Clock()
    store = AccountStore(path, verified_logins=VerifiedLogins(ttl=60, clock=clock))
    scrypt = _counting_scrypt(monkeypatch)
    assert store.authenticate_smtp("a", "pw").name == "a"
    assert store.authenticate_smtp("a", "pw").name == "a"
    assert scrypt[0] == 1  # the second connection's login was answered from the cache
    assert store.authenticate_smtp("a", "wrong") is None  # a cached login admits only its own password
    assert scrypt[0] == 2
    assert store.authenticate_smtp("a", "wrong") is None  # failures are never cached
    assert scrypt[0] == 3
    clock.now += 61
    assert store.authenticate_smtp("a", "pw").name == "a"
    assert scrypt[0] == 4  # expired: checked again


def test_a_changed_password_invalidates_the_verified_login(tmp_path):
    path = tmp_path / "accounts.json"
    write_accounts(path, AccountsFile(accounts=[Account(name="a", smtp_username="a", smtp_password_hash=hash_password("old"))]))
    store = AccountStore(path, check_interval=0)
    assert store.authenticate_smtp("a", "old").name == "a"
    write_accounts(path, AccountsFile(accounts=[Account(name="a", smtp_username="a", smtp_password_hash=hash_password("new"))]))
    os.utime(path, (1, 1))
    assert store.authenticate_smtp("a", "old") is None
    assert store.authenticate_smtp("a", "new").name == "a"


def test_the_cache_keeps_no_password():
    verified = VerifiedLogins()
    verified.remember("a", "correct horse battery", "scrypt$x$y")
    assert b"correct horse battery" not in repr(verified._entries).encode()
    assert verified.check("a", "correct horse battery", "scrypt$x$y")
    assert not verified.check("a", "correct horse battery", "scrypt$other$hash")
