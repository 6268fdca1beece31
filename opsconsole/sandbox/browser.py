"""The sandbox's stand-in for a person's browser: open a sandbox page, press a button.

One browser for every flow the simulated operator (``check --sandbox``) rehearses:

- approve a sign-in (device flow, browser-approval connect): open the page, press
  its approve button, follow the redirects as a browser would, and say whether the
  page approved (:meth:`SandboxBrowser.__call__`);
- press a button and report where the browser is sent without going there (OAuth
  callback: the redirect points at a port a person's browser often cannot reach,
  which is why the address bar is pasted) (:meth:`SandboxBrowser.press`).

It opens only pages this sandbox serves (its own origins, ``http://127.0.0.1:<port>``
of its own servers): the simulated operator never approves anything outside the
sandbox, not even another loopback service. It follows at most five redirects, only
within those origins, and reads at most 64 KiB of a page: a rehearsal aid, not a web
client.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import httpx

__all__ = ["BrowserError", "SandboxBrowser"]

_PAGE_BYTES = 64 * 1024
_HOPS = 5


class BrowserError(Exception):
    """The page could not be used as a person would (no such button, not the sandbox's...)."""


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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.hostname}:{port}" if parts.hostname and port else ""


class SandboxBrowser:
    """The simulated operator's browser, limited to the pages of one sandbox.

    ``origins`` gives the sandbox's own origins (``http://127.0.0.1:<port>``) at the time
    of a visit: services started, stopped or resumed later are seen as they are then."""

    def __init__(self, origins: Callable[[], Collection[str]], *, timeout: float = 10.0) -> None:
        self._origins = origins
        self.timeout = timeout

    def owns(self, url: str) -> bool:
        """Is ``url`` a page of this sandbox?"""
        origin = _origin(url)
        return bool(origin) and origin in {o.rstrip("/") for o in self._origins()}

    async def __call__(self, url: str) -> str:
        """Open ``url``, approve there and follow the browser to where it is sent.

        Returns what happened in plain words: "approved", "refused on the page",
        "not approved: the page answered 403", "not opened (not a page of this sandbox)".
        """
        import httpx

        if not self.owns(url):
            return "not opened (not a page of this sandbox)"
        try:
            async with self._client() as web:
                reply = await self._submit(web, url, "approve")
                for _ in range(_HOPS):
                    location = reply.headers.get("location")
                    if not (reply.is_redirect and location):
                        break
                    target = urljoin(str(reply.url), location)
                    if not self.owns(target):
                        return "approved"  # sent on, out of the sandbox: nothing more to see
                    reply = await web.get(target)
        except BrowserError as exc:
            return f"not approved: {exc}"
        except httpx.HTTPError as exc:
            return f"not approved: {type(exc).__name__}"
        if reply.status_code >= 400:
            return f"not approved: the page answered {reply.status_code}"
        if "denied" in reply.text[:_PAGE_BYTES].lower():
            return "refused on the page"
        return "approved"

    async def press(self, url: str, button: str = "approve") -> str:
        """Open ``url``, press the submit button whose value or label is ``button``, and return
        where the browser is sent (the redirect's Location, not visited: a callback port is
        often unreachable, which is the point of pasting it). Raises :class:`BrowserError`."""
        import httpx

        if not self.owns(url):
            raise BrowserError(f"the sandbox's browser only opens the sandbox's pages, not {url!r}")
        try:
            async with self._client() as web:
                answer = await self._submit(web, url, button)
        except httpx.HTTPError as exc:
            raise BrowserError(f"{type(exc).__name__} on {url!r}") from None
        location = answer.headers.get("location")
        if answer.is_redirect and location:
            return urljoin(str(answer.url), location)
        return str(answer.url)

    def _client(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=self.timeout)

    async def _submit(self, web: httpx.AsyncClient, url: str, button: str) -> httpx.Response:
        """Open the page (following redirects within the sandbox), press ``button``; the
        answer to the press, not followed."""
        page_url = url
        for _ in range(_HOPS):
            reply = await web.get(page_url)
            location = reply.headers.get("location")
            if reply.is_redirect and location and self.owns(urljoin(page_url, location)):
                page_url = urljoin(page_url, location)
                continue
            break
        else:
            raise BrowserError(f"{url!r} redirects more than {_HOPS} times")
        if reply.status_code != 200:
            raise BrowserError(f"the page answered {reply.status_code}")
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
                    if not self.owns(target):
                        raise BrowserError(f"the form posts outside the sandbox, to {target!r}")
                    if form.method == "post":
                        return await web.post(target, data=data)
                    return await web.get(target, params=data)
        raise BrowserError(f"no {button!r} button on the page")
