"""REST injection: `POST /v1/send` with the JSON bodies of the seeds.

A body names the envelope (`envelope`; omitted: no bounces reach the
customer), the recipients (`recipient` or `recipients`) and either a complete
`mime` or the parts to compose one (`from`, `to`, `subject`, `html`,
`text`). `trackbounces` (default true) and `dsn{notify, ret, envid, orcpt}`
decide what happens to bounces. The answer lists one message id per
recipient and is sent only after Kafka acknowledged all of them.

Errors are JSON: `{"error": code, "message": text}`, plus `fields` for 422.
The same app serves `/health` and `/metrics`.
"""


import time
from email.utils import parseaddr
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from bounceflow.accounts import Account, AccountStore
from bounceflow.kafka import KafkaUnavailable
from bounceflow.observability import HealthChecks, health_routes
from bounceflow_ingress import metrics
from bounceflow_ingress.auth_limit import FailureLimiter
from bounceflow_ingress.dsn_params import DsnParamError, from_rest
from bounceflow_ingress.publisher import Publisher
from bounceflow_ingress.submission import (
    RecipientRequest,
    Submission,
    SubmissionError,
    address_problem,
    build_records,
    compose_mime,
    header_values,
    normalise_line_endings,
)

INTERFACE = "rest"
API_VERSION = "1.0.0"

UNAUTHORIZED = "a valid API key is required (Authorization: Bearer <key>)"
RATE_LIMITED = "too many failed API keys from this address, try again later"
FORBIDDEN_SENDER = "this API key may not send as {address}"
KAFKA_UNAVAILABLE = "the message could not be stored, try again later"
TOO_LARGE = "request body larger than the maximum message size allows"
ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 429: "rate_limited", 503: "unavailable"}


def check_address(value: str) -> str:
    """An addr-spec (no display name); special-use domains such as .localhost are fine."""
    problem = address_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} is not a valid email address: {problem}")
    return value


def check_header_address(value: str) -> str:
    """A header address, optionally with a display name (`Alice <a@example.com>`)."""
    _, address = parseaddr(value)
    if not address:
        raise ValueError(f"{value!r} is not an address")
    check_address(address)
    return value


def check_text(value):
    """Strings must be valid Unicode (no lone surrogates): they end up as UTF-8."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("not valid Unicode (lone surrogate)") from None
    return value


def check_one_line(value: str | list[str] | None):
    """Header values may not contain line breaks (header injection)."""
    for item in [] if value is None else value if isinstance(value, list) else [value]:
        if "\r" in item or "\n" in item:
            raise ValueError("may not contain line breaks")
    return value


class DsnBody(BaseModel):
    """RFC 3461 options, as for SMTP but plain strings (no xtext)."""

    model_config = ConfigDict(extra="forbid")

    notify: str | list[str] | None = Field(
        default=None, description="NEVER, or SUCCESS, FAILURE, DELAY (comma-separated or a list)."
    )
    ret: str | None = Field(default=None, description="FULL or HDRS.")
    envid: str | None = Field(default=None, description="Envelope id, printable ASCII, at most 100 characters.")
    orcpt: str | None = Field(
        default=None, description="Original recipient: `rfc822;addr` or a bare address (one recipient only)."
    )

    _text = field_validator("*")(check_text)


EXAMPLE_BODIES = [
    {"envelope": "info@example.com", "recipient": "recipient@example.com", "from": "info@example.com",
     "to": "recipient@example.com", "html": "This is example content."},
    {"envelope": "bounce@yourdomain.com", "recipient": "info@example.com",
     "mime": "From: info@example.com\r\nSubject: hi\r\n\r\nHello\r\n", "trackbounces": True,
     "dsn": {"notify": "FAILURE", "ret": "HDRS", "envid": "unique-identifier", "orcpt": "info@example.com"}},
]


class SendRequest(BaseModel):
    """One message for one or more recipients."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={"examples": EXAMPLE_BODIES})

    envelope: str | None = Field(
        default=None, description="Envelope sender, where bounces go. Omitted: no bounces reach you.", json_schema_extra={"format": "email"}
    )
    recipient: str | None = Field(
        default=None, description="The envelope recipient (or use `recipients`).", json_schema_extra={"format": "email"}
    )
    recipients: list[str] | None = Field(default=None, description="Envelope recipients (or use `recipient`).")
    from_: str | None = Field(default=None, alias="from", description="From header (composed messages).")
    to: str | list[str] | None = Field(default=None, description="To header (composed messages).")
    subject: str | None = Field(default=None, description="Subject header (composed messages).")
    html: str | None = Field(default=None, description="HTML body (composed messages).")
    text: str | None = Field(default=None, description="Plain-text body (composed messages).")
    mime: str | None = Field(default=None, description="A complete MIME message, instead of the parts.")
    trackbounces: StrictBool = Field(
        default=True, description="Replace the envelope with our bounce address and record bounces."
    )
    bounce: str | None = Field(
        default=None,
        description="Accepted for SMTPeter compatibility and ignored: with trackbounces the relay "
        "uses its own signed bounce address.",
    )
    dsn: DsnBody | None = Field(default=None, description="Which DSNs to forward (RFC 3461).")

    _text = field_validator("*")(check_text)
    _one_line = field_validator("subject", "from_", "to")(check_one_line)

    @field_validator("envelope", "recipient")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return check_address(value) if value else value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        return [check_address(v) for v in value] if value is not None else None

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str | None) -> str | None:
        return check_header_address(value) if value is not None else None

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        for item in [value] if isinstance(value, str) else value:
            check_header_address(item)
        return value


class MessageAccepted(BaseModel):
    recipient: str
    message_id: str = Field(description="Our id for this recipient's copy (also in X-Bounceflow-Id).")


class SendResponse(BaseModel):
    messages: list[MessageAccepted]


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable code.")
    message: str


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorResponse(ErrorResponse):
    fields: list[FieldError]


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _field_name(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _recipients(body: SendRequest) -> list[str]:
    if body.recipient and body.recipients is not None:
        raise _Invalid("recipients", "give either recipient or recipients, not both")
    recipients = [body.recipient] if body.recipient else list(body.recipients or [])
    if not recipients:
        raise _Invalid("recipient", "a recipient is required")
    return recipients


def _mime(body: SendRequest, recipients: list[str], hostname: str) -> bytes:
    if body.mime is not None:
        for name in ("html", "text", "subject", "from_", "to"):
            if getattr(body, name) is not None:
                field = "from" if name == "from_" else name
                raise _Invalid(field, f"give either mime or {field}, not both (mime is a complete message)")
        if not body.mime.strip():
            raise _Invalid("mime", "mime is empty")
        return normalise_line_endings(body.mime)
    if body.html is None and body.text is None:
        raise _Invalid("html", "give html, text or a complete mime")
    if body.from_ is None:
        raise _Invalid("from", "from is required when the message is composed from parts")
    to = [body.to] if isinstance(body.to, str) else body.to
    if to is None:
        to = recipients if len(recipients) == 1 else []
    return compose_mime(
        from_=body.from_, to=to, subject=body.subject, html=body.html, text=body.text, hostname=hostname
    )


class _BodyLimit:
    """413 before reading a body whose Content-Length is far beyond the size limit.

    Plain ASGI: starlette's `@app.middleware("http")` runs every request in a
    task of its own with memory streams, which cost more than the check.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > self._max_bytes:
                metrics.rejected(INTERFACE, "too_large")
                await _error(413, "too_large", TOO_LARGE)(scope, receive, send)
                return
        await self._app(scope, receive, send)


def create_app(
    accounts: AccountStore,
    publisher: Publisher,
    limiter: FailureLimiter,
    hostname: str,
    max_message_size: int,
    max_recipients: int,
    max_total_bytes: int,
    health_checks: HealthChecks,
) -> FastAPI:
    """The FastAPI app: `/v1/send`, `/health`, `/metrics`."""
    app = FastAPI(
        title="bounceflow ingress",
        version=API_VERSION,
        description="Hand messages to bounceflow. Success means Kafka acknowledged every recipient's copy.",
    )
    bearer = HTTPBearer(auto_error=False, description="An API key of your account.")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected(INTERFACE, "invalid")
        fields = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(
            {"error": "invalid_request", "message": "; ".join(f"{f['field']}: {f['message']}" for f in fields),
             "fields": fields},
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = ERROR_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    app.add_middleware(_BodyLimit, max_bytes=2 * max_message_size + 65536)

    async def require_account(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Account:
        """Runs before the body is validated, so a stranger learns nothing about the API."""
        peer = request.client.host if request.client else "?"
        if limiter.blocked(peer):
            metrics.rejected(INTERFACE, "auth_rate_limited")
            raise HTTPException(429, RATE_LIMITED)
        account = accounts.authenticate_api_key(credentials.credentials) if credentials else None
        if account is None:
            if credentials is not None:
                limiter.failed(peer)
            metrics.rejected(INTERFACE, "auth_failed")
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
        limiter.succeeded(peer)
        return account

    @app.post(
        "/v1/send",
        response_model=SendResponse,
        responses={
            401: {"model": ErrorResponse, "description": "No or unknown API key."},
            403: {"model": ErrorResponse, "description": "The account may not send as this envelope/From."},
            413: {"model": ErrorResponse, "description": "Request body too large."},
            422: {"model": ValidationErrorResponse, "description": "Invalid body; `fields` says where."},
            429: {"model": ErrorResponse, "description": "Too many failed API keys from this address."},
            503: {"model": ErrorResponse, "description": "Kafka did not acknowledge; nothing was accepted."},
        },
        summary="Send one message to one or more recipients",
    )
    async def send(account: Annotated[Account, Depends(require_account)], body: SendRequest):
        try:
            submission = _submission(body, account)
            records = build_records(submission, hostname)
        except _Invalid as exc:
            raise RequestValidationError([{"loc": ("body", exc.field), "msg": exc.message, "type": "value_error"}])
        except (SubmissionError, DsnParamError) as exc:
            field = getattr(exc, "field", "dsn")
            raise RequestValidationError([{"loc": ("body", field), "msg": str(exc), "type": "value_error"}])
        for address in (body.envelope, parseaddr(body.from_ or "")[1]):
            if address and not account.may_send_as(address):
                metrics.rejected(INTERFACE, "sender_not_allowed")
                return _error(403, "forbidden", FORBIDDEN_SENDER.format(address=address))
        started = time.perf_counter()
        try:
            await publisher.publish(records)
        except KafkaUnavailable:
            metrics.rejected(INTERFACE, "kafka_unavailable")
            return _error(503, "unavailable", KAFKA_UNAVAILABLE, headers={"Retry-After": "5"})
        metrics.accepted(INTERFACE, len(records), time.perf_counter() - started)
        return SendResponse(messages=[MessageAccepted(recipient=r.recipient, message_id=r.message_id) for r in records])

    def _submission(body: SendRequest, account: Account) -> Submission:
        recipients = _recipients(body)
        if len(recipients) > max_recipients:
            raise _Invalid("recipients", f"at most {max_recipients} recipients per message")
        dsn_body = body.dsn or DsnBody()
        if dsn_body.orcpt is not None and len(recipients) > 1:
            raise _Invalid("dsn.orcpt", "orcpt names one original recipient; use it with a single recipient")
        try:
            dsn = from_rest(dsn_body.notify, dsn_body.ret, dsn_body.envid, dsn_body.orcpt)
        except DsnParamError as exc:
            raise _Invalid("dsn", str(exc)) from None
        mime = _mime(body, recipients, hostname)
        if len(mime) > max_message_size:
            raise _Invalid("mime" if body.mime is not None else "html",
                           f"message is {len(mime)} bytes, more than the maximum of {max_message_size}")
        if len(mime) * len(recipients) > max_total_bytes:
            raise _Invalid("recipients", "message too large for this many recipients; send fewer per message")
        if body.mime is not None and not header_values(mime, "From"):
            raise _Invalid("mime", "the message has no From header")
        return Submission(
            account=account.name,
            source=INTERFACE,
            envelope_from=body.envelope or "",
            recipients=tuple(RecipientRequest(address=r, dsn=dsn) for r in recipients),
            track_bounces=body.trackbounces,
            mime=mime,
        )

    app.router.routes.extend(health_routes("ingress", health_checks))
    return app
