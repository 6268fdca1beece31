"""The sandbox's stand-in for a person's browser: open a sandbox approval page, press a button.

Used only by the simulated operator (``check --sandbox``) to answer a question whose
answer a person gets from a browser (the URL an OAuth authorization redirected to).
It visits loopback addresses only, never follows a redirect off loopback, and reads
at most 64 KiB of a page: it is a rehearsal aid, not a web client.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

__all__ = ["BrowserError", "press"]

_PAGE_BYTES = 64 * 1024
_HOPS = 5


class BrowserError(Exception):
    """The page could not be used as a person would (no such button, not loopback...)."""


@dataclass
class _Form:
    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    #: (name, value, text) of each submit button
    buttons: list[tuple[str, str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._button: tuple[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                _Form(action=values.get("action", ""), method=values.get("method", "get").lower())
            )
        elif not self.forms:
            return
        elif tag == "input":
            kind = values.get("type", "text").lower()
            if kind == "submit":
                self.forms[-1].buttons.append(
                    (values.get("name", ""), values.get("value", ""), values.get("value", ""))
                )
            elif values.get("name"):
                self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("type", "submit").lower() == "submit":
            self._button = (values.get("name", ""), values.get("value", ""))
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            name, value = self._button
            self.forms[-1].buttons.append((name, value, "".join(self._text).strip()))
            self._button = None


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def press(url: str, button: str = "approve", *, timeout: float = 10.0) -> str:
    """Open ``url``, press the submit button whose value or label is ``button``, and return
    where the browser is sent (the redirect's Location, not visited: a callback port is
    often unreachable, which is the point of pasting it). Raises :class:`BrowserError`."""
    import httpx

    if not _loopback(url):
        raise BrowserError(f"the sandbox's browser only opens loopback pages, not {url!r}")
    try:
        return await _press(url, button, timeout)
    except httpx.HTTPError as exc:
        raise BrowserError(f"{type(exc).__name__} on {url!r}") from None


async def _press(url: str, button: str, timeout: float) -> str:
    import httpx

    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout) as web:
        page_url = url
        for _ in range(_HOPS):
            reply = await web.get(page_url)
            if reply.is_redirect and _loopback(urljoin(page_url, reply.headers["location"])):
                page_url = urljoin(page_url, reply.headers["location"])
                continue
            break
        else:
            raise BrowserError(f"{url!r} redirects more than {_HOPS} times")
        if reply.status_code != 200:
            raise BrowserError(f"the page {page_url!r} answered {reply.status_code}")
        parser = _Forms()
        parser.feed(reply.text[:_PAGE_BYTES])
        wanted = button.lower()
        for form in parser.forms:
            for name, value, text in form.buttons:
                if wanted in (value.lower(), text.lower()):
                    data = dict(form.fields)
                    if name:
                        data[name] = value
                    target = urljoin(page_url, form.action or page_url)
                    if not _loopback(target):
                        raise BrowserError(f"the form posts off loopback, to {target!r}")
                    if form.method == "post":
                        answer = await web.post(target, data=data)
                    else:
                        answer = await web.get(target, params=data)
                    location = answer.headers.get("location")
                    if answer.is_redirect and location:
                        return urljoin(target, location)
                    return str(answer.url)
        raise BrowserError(f"no {button!r} button on {page_url!r}")
