"""Accounts file: hashes only, dev account creation, reload on change."""

import json
import os
import stat

from bounceflow.accounts import (
    Account, AccountsFile, AccountStore, Webhook, ensure_dev_account, hash_api_key,
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
