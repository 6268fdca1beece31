"""Browser approval for ``ops trigger``: show the URL a person must approve, while the
step follows the server's state.

For a connect whose OAuth dance the server owns (OAuth 1.0a: the Discogs collection
integration): the trigger's response names an authorize URL (``approve.url``, a
JMESPath, or ``approve.header``); the operator is asked to approve there with the
same question (and the same dialog) as a device flow's, while the follow polls the
server to its end. Nothing here decides the outcome: the server's state does.

- In the console the URL is always on screen (copy with OSC 52, a QR code when it
  fits, a browser only on request and only with a local display); escape cancels
  (the connect was started: its outcome is then unknown, never "failed").
- ``check --sandbox``: the simulated operator approves through the sandbox's
  browser (only the sandbox's own pages).
- ``check`` elsewhere cannot approve: the step stops following and says so (the
  connect was started, so its outcome is unknown, never a pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import field_validator, model_validator

from ..operator import ApproveInBrowser, Note
from .base import StepSpec

if TYPE_CHECKING:
    from ..artifacts import ResponseArtifact
    from ..operator import Reply
    from .base import StepContext

__all__ = ["ApproveSpec", "approval_url", "ask_to_approve", "follow_while_asking"]

T = TypeVar("T")


class ApproveSpec(StepSpec):
    """Where the trigger's response says what to approve, and who it was approved for."""

    #: JMESPath to the URL in the response's JSON (``authorize_url``)
    url: str | None = None
    #: or the response header holding it (``Location``)
    header: str | None = None
    #: JMESPath into the last read-back: the account now connected (shown when it is)
    account: str | None = None
    #: what the operator is asked
    prompt: str = "Open this URL in a browser and approve"

    @field_validator("url", "account")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        from .trigger import _jmespath  # trigger imports this module: not at the top

        return _jmespath(value)

    @model_validator(mode="after")
    def _one_place(self) -> ApproveSpec:
        if (self.url is None) == (self.header is None):
            raise ValueError("approve needs exactly one of url (a JMESPath) or header")
        return self

    @property
    def where(self) -> str:
        return f"header {self.header}" if self.header else f"{self.url}"


def approval_url(spec: ApproveSpec, response: ResponseArtifact) -> str | None:
    """The URL to approve, from the trigger's response; None when it has none."""
    from ..expectations import search_json

    if spec.header is not None:
        wanted = spec.header.lower()
        found: Any = next((v for k, v in response.headers.items() if k.lower() == wanted), None)
    elif response.is_json and spec.url is not None:
        try:
            found = search_json(spec.url, response.document)
        except ValueError:
            found = None
    else:
        found = None
    if not isinstance(found, str) or not found.startswith(("http://", "https://")):
        return None
    return found


def ask_to_approve(
    ctx: StepContext[Any], spec: ApproveSpec, url: str, wait: float
) -> asyncio.Task[Reply]:
    """Ask the operator to approve at ``url`` (the question stays open while the step
    follows; cancel the task to close it)."""
    ctx.emit(Note(text=f"{spec.prompt}: {url}"))
    question = ApproveInBrowser(
        prompt=spec.prompt,
        key="approve",
        verification_uri=url,
        expires_at=time.time() + wait,
        restart=False,
        unattended_reason=(
            "needs a person to approve in a browser; run it in the console, or with "
            "--sandbox"
        ),
    )
    return asyncio.get_running_loop().create_task(ctx.ask(question))


async def follow_while_asking(following: Awaitable[T], approval: asyncio.Task[Reply]) -> T:
    """Follow to the end while the question is open. "Approved" from the operator keeps
    following (the server's state decides); a cancel or "nobody can answer here" stops
    following and is raised. The question is closed when following ends."""
    follow: asyncio.Future[T] = asyncio.ensure_future(following)
    try:
        waiting: set[asyncio.Future[Any]] = {follow, approval}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not follow.done() and approval.exception() is not None:
            approval.result()  # StepCancelled, NoAnswer: raised from here
        return await follow
    finally:
        for task in (follow, approval):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
