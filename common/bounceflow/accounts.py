"""Customer accounts: who may inject mail, and where their bounces go.

Accounts live in a JSON file (`BOUNCEFLOW_ACCOUNTS_FILE`) that every service
reads; it holds only hashes of SMTP passwords and API keys. The webhook
signing secrets must be kept in clear (we sign with them), so the file is
written with mode 0600 and lives under var/, never in the repo.
`AccountStore` re-reads the file when it changes, so adding an account needs
no restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """scrypt hash as `scrypt$<salt-b64>$<hash-b64>`."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt${}${}".format(base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against `hash_password`'s output."""
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def hash_api_key(api_key: str) -> str:
    """API keys are long random strings, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class Webhook(BaseModel):
    """One feedback loop endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Where events are POSTed.")
    format: Literal["json", "form"] = Field(
        default="json", description="Body encoding; `form` for SMTPeter-style receivers."
    )
    secret: SecretStr = Field(
        description="Standard Webhooks signing secret (`whsec_` + base64)."
    )


class Account(BaseModel):
    """A customer of the relay."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Account id, e.g. `demo`.")
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user name.")
    smtp_password_hash: str | None = Field(default=None, description="hash_password() output.")
    api_key_hashes: list[str] = Field(default_factory=list, description="hash_api_key() outputs.")
    bounce_domain: str | None = Field(
        default=None, description="Domain of this account's VERP addresses (default: the first bounce domain)."
    )
    allowed_sender_domains: list[str] = Field(
        default_factory=list,
        description="Envelope/From domains this account may send as; empty allows any.",
    )
    track_bounces: bool = Field(
        default=True, description="Default for SMTP injection (REST can set it per message)."
    )
    forward_address: str | None = Field(
        default=None, description="Forward bounces here when a message has no envelope of its own."
    )
    bounce_webhook: Webhook | None = Field(default=None, description="Bounce feedback loop.")
    failure_webhook: Webhook | None = Field(default=None, description="Failure feedback loop.")

    def may_send_as(self, address: str) -> bool:
        """Whether this account may use `address` as envelope or From."""
        if not self.allowed_sender_domains or not address:
            return True
        domain = address.rpartition("@")[2].lower()
        return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in self.allowed_sender_domains)


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Account] = Field(default_factory=list)


def read_accounts(path: str | Path) -> AccountsFile:
    """Parse the accounts file; a missing file means no accounts."""
    path = Path(path)
    if not path.exists():
        return AccountsFile()
    return AccountsFile.model_validate_json(path.read_bytes())


def write_accounts(path: str | Path, accounts: AccountsFile) -> None:
    """Write atomically with mode 0600 (the file holds webhook secrets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = accounts.model_dump(mode="json")
    for account, raw in zip(accounts.accounts, data["accounts"]):
        for kind in ("bounce_webhook", "failure_webhook"):
            hook = getattr(account, kind)
            if hook is not None:
                raw[kind]["secret"] = hook.secret.get_secret_value()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


class VerifiedLogins:
    """Recently verified SMTP logins, so that every new connection of a busy client
    does not pay for scrypt again (~50 ms of CPU; a sending MTA opens dozens).

    Like Dovecot's auth cache: after a successful check it keeps, per username,
    the stored hash it was checked against and an HMAC of the password under a
    key that lives only in this process (never the password). A later login
    with the same password against the same stored hash within `ttl` seconds
    is accepted without scrypt; anything else (another password, a changed
    hash, an expired entry) goes through scrypt again. Failures are never kept.
    """

    def __init__(self, ttl: float = 600.0, clock=time.monotonic, max_entries: int = 10_000) -> None:
        self._ttl, self._clock, self._max = ttl, clock, max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[str, bytes, float]] = {}

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def check(self, username: str, password: str, stored: str) -> bool:
        """True when this exact login was verified against `stored` within the TTL."""
        entry = self._entries.get(username)
        if entry is None:
            return False
        entry_stored, mac, verified_at = entry
        if entry_stored != stored or self._clock() - verified_at > self._ttl:
            del self._entries[username]
            return False
        return hmac.compare_digest(mac, self._mac(password))

    def remember(self, username: str, password: str, stored: str) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()  # a crude bound; entries are cheap to rebuild
        self._entries[username] = (stored, self._mac(password), self._clock())


class AccountStore:
    """Lookups by SMTP login, API key and name; re-reads the file when it changes."""

    def __init__(self, path: str | Path, check_interval: float = 1.0,
                 verified_logins: VerifiedLogins | None = None) -> None:
        self._path = Path(path)
        self._check_interval = check_interval
        self._verified = verified_logins if verified_logins is not None else VerifiedLogins()
        self._checked_at = 0.0
        self._mtime: float | None = None
        self._by_name: dict[str, Account] = {}
        self._by_login: dict[str, Account] = {}
        self._by_key_hash: dict[str, Account] = {}
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self._check_interval:
            return
        self._checked_at = now
        mtime = self._path.stat().st_mtime if self._path.exists() else None
        if not force and mtime == self._mtime:
            return
        self._mtime = mtime
        accounts = read_accounts(self._path).accounts
        self._by_name = {a.name: a for a in accounts}
        self._by_login = {a.smtp_username: a for a in accounts if a.smtp_username}
        self._by_key_hash = {h: a for a in accounts for h in a.api_key_hashes}

    def get(self, name: str) -> Account | None:
        self._refresh()
        return self._by_name.get(name)

    def authenticate_smtp(self, username: str, password: str) -> Account | None:
        """The account for a valid SMTP login, else None."""
        self._refresh()
        account = self._by_login.get(username)
        if account is None or not account.smtp_password_hash:
            return None
        stored = account.smtp_password_hash
        if self._verified.check(username, password, stored):
            return account
        if not verify_password(password, stored):
            return None
        self._verified.remember(username, password, stored)
        return account

    def authenticate_api_key(self, api_key: str) -> Account | None:
        """The account owning `api_key`, else None."""
        self._refresh()
        return self._by_key_hash.get(hash_api_key(api_key))


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_dev_account(accounts_path: str | Path, credentials_path: str | Path) -> bool:
    """Create the `demo` account with fresh credentials if it does not exist.

    The clear-text credentials go to `credentials_path` (mode 0600) for the
    developer; only hashes go into the accounts file. Returns True if created.
    """
    current = read_accounts(accounts_path)
    if any(a.name == "demo" for a in current.accounts):
        return False
    password = secrets.token_urlsafe(18)
    api_key = "bf_" + secrets.token_urlsafe(24)
    account = Account(
        name="demo",
        smtp_username="demo",
        smtp_password_hash=hash_password(password),
        api_key_hashes=[hash_api_key(api_key)],
        bounce_domain="bounces.localhost",
    )
    write_accounts(accounts_path, AccountsFile(accounts=[*current.accounts, account]))
    credentials_path = Path(credentials_path)
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"account": "demo", "smtp_username": "demo", "smtp_password": password,
             "api_key": api_key, "bounce_domain": "bounces.localhost"},
            fh,
            indent=2,
        )
    return True
