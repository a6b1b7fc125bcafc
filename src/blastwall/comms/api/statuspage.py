"""The public status page: `/status` (HTML, no script), Atlassian Statuspage's read API under
`/status/api/v2/`, and its subscriptions. No route here takes a token (`gate.NO_TOKEN_PATHS`),
so none shows more than the page's own tables hold."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blastwall.comms.flows import statuspage as flows
from blastwall.comms.models.statuspage import SubscriberKind
from blastwall.comms.service import statuspage_subscribers as subscribers
from blastwall.comms.service.statuspage import PageInfo
from blastwall.comms.service.statuspage_feed import DOCUMENTS, Feed
from blastwall.db import utcnow
from blastwall.dependencies import SessionDep, SettingsDep
from blastwall.errors import InvalidInput, NotFound, TooManyRequests
from blastwall.settings import Settings

__all__ = ["ClientLimiter", "router"]

router = APIRouter(prefix="/status", tags=["status page"])
API_BASE = "/status/api/v2/"
CACHE = {"Cache-Control": "public, max-age=30"}
"""The page changes when an update is published: readers may keep it half a minute."""
FORM = "application/x-www-form-urlencoded"
FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "maxLength": 254},
        "component": {"type": "array", "items": {"type": "string", "maxLength": 100}},
    },
    "required": ["email"],
}
Token = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class ClientLimiter:
    """At most `limit` requests per client address in any `window` seconds (a sliding
    window), in this process. Memory stays bounded: past `max_clients` addresses, the one
    seen longest ago is forgotten."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = 3600.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client: str) -> None:
        """Count a request of `client`; TooManyRequests past the limit."""
        now = self.clock()
        with self._lock:
            times = self._seen.pop(client, None) or deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            self._seen[client] = times
            if len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            if len(times) >= self.limit:
                raise TooManyRequests(
                    f"This address asked for {self.limit} subscriptions within the hour "
                    "already; try again later."
                )
            times.append(now)


def _limited(request: Request, settings: SettingsDep) -> None:
    state = request.app.state
    limiter: ClientLimiter | None = getattr(state, "status_limiter", None)
    if limiter is None:
        limiter = state.status_limiter = ClientLimiter(settings.status_subscribe_per_hour)
    limiter.admit(request.client.host if request.client else "unknown")


def _feed(session: SessionDep, settings: SettingsDep) -> Feed:
    return Feed.read(session, page=PageInfo.of(settings), now=utcnow())


FeedDep = Annotated[Feed, Depends(_feed)]


@router.get("", response_class=HTMLResponse, summary="The status page")
def status_page(feed: FeedDep) -> HTMLResponse:
    """The public status page: components, current incidents and maintenances, and the last
    90 days (no token)."""
    return HTMLResponse(feed.html(api_base=API_BASE, subscribe="/status/subscribe"), headers=CACHE)


def _document(name: str) -> Callable[[Feed], JSONResponse]:
    def read(feed: FeedDep) -> JSONResponse:
        return JSONResponse(feed.documents()[name], headers=CACHE)

    read.__doc__ = f"Statuspage's `/api/v2/{name}`, for its consumers (no token)."
    return read


for _name in DOCUMENTS:
    router.add_api_route(
        f"/api/v2/{_name}",
        _document(_name),
        methods=["GET"],
        summary=f"Statuspage {_name}",
        operation_id=f"statuspage_{_name.replace('/', '_').replace('-', '_').replace('.', '_')}",
    )


class SubscribeIn(BaseModel):
    """An e-mail address or a webhook URL (one of them), and the components whose news it
    wants (none: every component)."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254)
    webhook: str | None = Field(default=None, max_length=2000)
    component_ids: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=100
    )

    @model_validator(mode="after")
    def _one_address(self) -> SubscribeIn:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give either `email` or `webhook`, one of them")
        return self


class SubscribeOut(BaseModel):
    status: str
    detail: str


@router.post(
    "/api/v2/subscribers",
    status_code=202,
    response_model=SubscribeOut,
    dependencies=[Depends(_limited)],
)
def subscribe(body: SubscribeIn, session: SessionDep, settings: SettingsDep) -> SubscribeOut:
    """Subscribe an address to the page's news; it receives nothing but a confirmation link
    until the link is followed (no token; a few a client address an hour)."""
    kind = SubscriberKind.email if body.email is not None else SubscriberKind.webhook
    flows.subscribe(
        session,
        kind=kind,
        address=body.email if body.email is not None else body.webhook or "",
        component_ids=body.component_ids,
        page=PageInfo.of(settings),
        private_webhooks=settings.status_private_webhooks,
    )
    return SubscribeOut(
        status="pending",
        detail="A confirmation was sent to the address: follow its link to receive the "
        "page's news.",
    )


async def _form(request: Request) -> dict[str, list[str]]:
    """A form's fields (application/x-www-form-urlencoded), read by hand: the page's one form
    needs no multipart parser. The body is already bounded by the gate."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        return parse_qs(text, max_num_fields=200)
    except ValueError:
        raise InvalidInput("The form has too many fields.") from None


@router.post(
    "/subscribe",
    response_class=HTMLResponse,
    dependencies=[Depends(_limited)],
    openapi_extra={"requestBody": {"content": {FORM: {"schema": FORM_SCHEMA}}}},
)
def subscribe_form(
    form: Annotated[dict[str, list[str]], Depends(_form)],
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The page's form: subscribe an e-mail address, to every component or to those
    ticked (no token; a few a client address an hour)."""
    emails = form.get("email", [])
    try:
        if len(emails) != 1:
            raise InvalidInput("Give one e-mail address.")
        flows.subscribe(
            session,
            kind=SubscriberKind.email,
            address=emails[0][:254],
            component_ids=[c[:100] for c in form.get("component", [])],
            page=PageInfo.of(settings),
        )
    except InvalidInput as exc:
        return _message(settings, "Not subscribed", exc.detail, status=422)
    return _message(
        settings,
        "Check your inbox",
        "A link to confirm was sent to the address: nothing else is sent until it is followed.",
        status=202,
    )


@router.get("/subscribers/confirm/{token}", response_class=HTMLResponse)
def confirm_form(token: Token, settings: SettingsDep) -> HTMLResponse:
    """A button that confirms the subscription (a link alone confirms nothing, so that a
    mail scanner that follows links does not subscribe anyone)."""
    return _message(settings, "Confirm your subscription", "", action="Confirm")


@router.post("/subscribers/confirm/{token}", response_class=HTMLResponse)
def confirm(token: Token, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        row = subscribers.confirm(session, token=token, now=utcnow())
    except NotFound as exc:
        return _message(settings, "Link unknown", exc.detail, status=404)
    what = ", ".join(row.component_ids) or "every component"
    return _message(settings, "Subscribed", f"{row.address} will receive news of {what}.")


@router.get("/subscribers/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_form(token: Token, settings: SettingsDep) -> HTMLResponse:
    return _message(settings, "Unsubscribe", "", action="Unsubscribe")


@router.post("/subscribers/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(token: Token, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        row = subscribers.unsubscribe(session, token=token)
    except NotFound as exc:
        return _message(settings, "Link unknown", exc.detail, status=404)
    return _message(settings, "Unsubscribed", f"{row.address} will receive nothing more.")


def _message(
    settings: Settings, title: str, text: str, *, action: str = "", status: int = 200
) -> HTMLResponse:
    html = _template().render(
        page_name=settings.status_page_name, title=title, text=text, action=action
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FilePath(__file__).parent.parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("statuspage_message.html")
