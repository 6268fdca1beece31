"""The pasted redirect URL of ``ops oauth_callback`` is checked before anything is sent."""

from __future__ import annotations

import getpass
import socket

import pytest

from opsconsole.steps.callback import check_redirect, redirect_secrets, tunnel_command

STATE = "issued-state-1"
REDIRECT = "http://127.0.0.1:8888/callback"


def test_a_good_paste_gives_its_code() -> None:
    verdict = check_redirect(f"{REDIRECT}?code=abc&state={STATE}", STATE, REDIRECT)
    assert verdict.problems == [] and verdict.warnings == [] and verdict.code == "abc"


@pytest.mark.parametrize(
    ("pasted", "said"),
    [
        ("", "nothing was pasted"),
        ("code=abc&state=issued-state-1", "not a full http(s) URL"),
        ("ftp://127.0.0.1:8888/callback?code=abc&state=issued-state-1", "not a full http(s) URL"),
        (f"{REDIRECT}?code=abc", "no state parameter"),
        (f"{REDIRECT}?code=abc&state=someone-elses", "not the one this run was issued"),
        (f"{REDIRECT}?state={STATE}", "has no code"),
        (f"{REDIRECT}?code=&state={STATE}", "has no code"),
        ("http://127.0.0.1:99999/callback?code=a&state=issued-state-1", "not a full http(s) URL"),
    ],
)
def test_a_paste_that_cannot_be_used_is_refused_with_the_reason(pasted: str, said: str) -> None:
    verdict = check_redirect(pasted, STATE, REDIRECT)
    assert verdict.problems and said in verdict.problems[0]
    assert verdict.code == ""


def test_an_error_redirect_carries_its_description() -> None:
    verdict = check_redirect(
        f"{REDIRECT}?error=access_denied&error_description=The+user+denied&state={STATE}",
        STATE,
        REDIRECT,
    )
    assert verdict.problems == []
    assert verdict.error == ("access_denied", "The user denied")


def test_another_host_or_port_is_warned_about_not_refused() -> None:
    pasted = f"http://localhost:9999/callback?code=abc&state={STATE}"
    verdict = check_redirect(pasted, STATE, REDIRECT)
    assert verdict.problems == [] and verdict.code == "abc"
    assert "localhost:9999" in verdict.warnings[0] and "127.0.0.1:8888" in verdict.warnings[0]


def test_a_16_kb_paste_is_read_whole() -> None:
    code = "c" * 16_000
    verdict = check_redirect(f"{REDIRECT}?code={code}&state={STATE}", STATE, REDIRECT)
    assert verdict.code == code  # nothing cut at 4,096 bytes or anywhere else


def test_the_tunnel_command_names_the_callback_port_and_the_target() -> None:
    assert tunnel_command(REDIRECT, "ops@hdm-1") == "ssh -N -L 8888:127.0.0.1:8888 ops@hdm-1"
    fallback = tunnel_command("http://127.0.0.1/cb", None)
    assert fallback == f"ssh -N -L 80:127.0.0.1:80 {getpass.getuser()}@{socket.gethostname()}"


def test_the_secret_parts_of_a_paste_are_its_values_not_its_address_or_state() -> None:
    pasted = f"{REDIRECT}?code=c0de-value&state={STATE}&session_state=s355i0n%2Fv"
    assert redirect_secrets(pasted) == ["c0de-value", "s355i0n%2Fv", "s355i0n/v"]
    assert redirect_secrets(
        f"{REDIRECT}?error=access_denied&error_description=The+user+denied&state={STATE}"
    ) == []  # the refusal is shown in the operator's words, not masked
    assert redirect_secrets("http://ops:pa55word@127.0.0.1:8888/cb#access_token=t0ken-1") == [
        "pa55word", "t0ken-1",
    ]


def test_a_paste_that_is_not_a_url_or_has_a_tiny_code_is_secret_whole() -> None:
    assert redirect_secrets("code=abcdef&state=x") == ["code=abcdef&state=x"]
    tiny = f"{REDIRECT}?code=ab&state={STATE}"
    assert redirect_secrets(tiny) == [tiny]
