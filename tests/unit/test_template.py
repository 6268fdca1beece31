"""Data never becomes code: values rendered into shell, URLs and patterns stay values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsconsole.errors import TemplateError
from opsconsole.patterns import PatternTimeout, search
from opsconsole.template import references, render, render_value, secrets_used, template_problems
from tests.conftest import REPO

HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "\\'$(touch pwned)\\",
    "$'\\x27'; touch pwned",
    "${IFS}touch${IFS}pwned",
    "a b\tc * ~ !$ ) ( { } | & ; < >",
    "}$(touch pwned)",
]

#: each prints the value followed by a newline; every quoting style an author may use
SHELL_TEMPLATES = [
    "printf '%s\\n' {{ id }}",
    "printf '%s\\n' \"{{ id }}\"",
    "printf '%s\\n' '{{ id }}'",
    "printf '%s\\n' $'{{ id }}'",
    "printf '%s\\n' pre{{ id }}post | sed -e 's/^pre//' -e 's/post$//'",
    "printf '%s\\n' \"$(printf '%s' \"{{ id }}\")\"",
    "printf '%s\\n' \"$( (printf '%s' {{ id }} | cat) )\"",
    "X={{ id }}; printf '%s\\n' \"$X\"",
    "cat <<EOF\n{{ id }}\nEOF",
    "cat <<-'EOF'\n{{ id }}\n\tEOF",
    "# a comment that doesn't close its quote: {{ id }}\nprintf '%s\\n' {{ id }}",
    'cat <<< "{{ id }}"',
    "echo $(( 1 << 2 )) >/dev/null; printf '%s\\n' \"{{ id }}\"",
    "printf '%s\\n' \"$(case a in a) printf '%s' {{ id }};; esac)\"",
    "printf '%s\\n' \"$(case a in (a) printf '%s' \"{{ id }}\";; esac)\"",
    "f() { cat <<EOF\n{{ id }}\nEOF\n}; f",
]


def run_bash(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=20
    )


@pytest.mark.parametrize("template", SHELL_TEMPLATES)
def test_captured_value_cannot_run_in_any_quoting_style(template: str, tmp_path: Path) -> None:
    for value in HOSTILE:
        command = render(template, {"id": value}, context="shell")
        done = run_bash(command, tmp_path)
        assert not (tmp_path / "pwned").exists(), f"{template!r} ran {value!r}"
        assert done.stdout == value + "\n", (template, value, command, done.stderr)


def test_a_value_with_a_line_break_stays_one_value_outside_heredocs(tmp_path: Path) -> None:
    value = "first line\n$(touch pwned)\n'second'"
    for template in SHELL_TEMPLATES[:4]:
        done = run_bash(render(template, {"id": value}, context="shell"), tmp_path)
        assert done.stdout == value + "\n"
    assert not (tmp_path / "pwned").exists()


def test_a_line_break_cannot_end_a_comment_early(tmp_path: Path) -> None:
    command = render("# job {{ id }}\nprintf 'ok\\n'", {"id": "x\ntouch pwned #"}, context="shell")
    assert run_bash(command, tmp_path).stdout == "ok\n"
    assert not (tmp_path / "pwned").exists()


def test_raw_reference_is_the_authors_piece_of_command(tmp_path: Path) -> None:
    command = render(
        "{{ start_cmd | raw }} {{ arg }}",
        {"start_cmd": "printf '%s|%s\\n' started", "arg": "$(touch pwned)"},
        context="shell",
    )
    assert run_bash(command, tmp_path).stdout == "started|$(touch pwned)\n"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("template", "value", "message"),
    [
        ("echo `echo {{ id }}`", "x", "inside backticks"),
        ('echo "${UNSET:-{{ id }}}"', "x", "inside \\$\\{"),
        ("echo ${UNSET:-{{ id }}}", "x", "inside \\$\\{"),
        ("echo \\{{ id }}", "x", "backslash right before"),
        ('echo "\\{{ id }}"', "x", "backslash right before"),
        ("cat <<EOF\n{{ id }}\nEOF", "x\nEOF\ntouch pwned", "line break"),
        ("cat <<'EOF'\n{{ id }}\nEOF", "x\nEOF\ntouch pwned", "line break"),
        ("cat <<END\n{{ id }}\ntouch done\nEND", "END", "the word END"),
    ],
)
def test_spots_that_cannot_be_quoted_safely_are_refused(
    template: str, value: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, {"id": value}, context="shell")


BASE = {"base_url": "http://127.0.0.1:8010", "id": "../../admin/delete?all=1#"}


def test_captured_path_traversal_stays_one_encoded_segment() -> None:
    url = render(
        "{{ base_url }}/api/v1/ops/jobs/{{ id }}", BASE, context="url", trusted={"base_url"}
    )
    assert url == "http://127.0.0.1:8010/api/v1/ops/jobs/..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23"


def test_query_and_fragment_values_cannot_add_parameters() -> None:
    url = render(
        "http://127.0.0.1:8010/search?q={{ q }}&page=1#{{ q }}",
        {"q": "x&admin=1#y /z"},
        context="url",
    )
    assert url == (
        "http://127.0.0.1:8010/search?q=x%26admin%3D1%23y%20%2Fz&page=1#x%26admin%3D1%23y%20%2Fz"
    )


def test_only_an_environment_variable_may_open_a_url_unmarked() -> None:
    variables = {**BASE, "next_url": "http://127.0.0.1:9/steal"}
    with pytest.raises(TemplateError, match=r"write \{\{ next_url \| raw \}\}"):
        render("{{ next_url }}/x", variables, context="url", trusted={"base_url"})
    # the base URL was replaced by a capture of the same name: the caller leaves it untrusted
    with pytest.raises(TemplateError, match="starts the URL"):
        render("{{ base_url }}/x", variables, context="url", trusted=())
    marked = render("{{ next_url | raw }}?id={{ id }}", variables, context="url")
    assert marked == "http://127.0.0.1:9/steal?id=..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23"
    # trusted only at the very start: anywhere else it is a value like any other
    inner = render("http://127.0.0.1/{{ base_url }}", BASE, context="url", trusted={"base_url"})
    assert inner == "http://127.0.0.1/http%3A%2F%2F127.0.0.1%3A8010"


def test_host_part_takes_only_a_host_and_dot_segments_are_refused() -> None:
    assert (
        render("http://{{ host }}/x", {"host": "127.0.0.1:8010"}, context="url")
        == "http://127.0.0.1:8010/x"
    )
    with pytest.raises(TemplateError, match="not a host name"):
        render("http://{{ host }}/x", {"host": "evil.test/x?"}, context="url")
    with pytest.raises(TemplateError, match="would change the path"):
        render("http://127.0.0.1/jobs/{{ id }}/cancel", {"id": ".."}, context="url")


def test_pattern_context_escapes_a_captured_regex() -> None:
    pattern = render("^job {{ name }} done$", {"name": "(a+)+$"}, context="pattern")
    assert search(pattern, "job (a+)+$ done") is not None
    assert search(pattern, "job aaaa done") is None
    assert search(pattern, "job " + "a" * 5000 + "!", timeout=5) is None  # no backtracking
    assert render("{{ p | raw }}", {"p": "a+"}, context="pattern") == "a+"


def test_raw_filter_is_still_a_reference_and_unknown_filters_are_reported() -> None:
    text = "{{ base_url | raw }}/x/{{ secrets.ops_key|raw }}/{{ id | upper }}"
    assert list(references(text)) == ["base_url", "secrets.ops_key", "id"]
    assert template_problems(text) == ["unknown filter 'upper' in {{ id | upper }} (known: raw)"]
    with pytest.raises(TemplateError, match="unknown filter 'upper'"):
        render(text, {"base_url": "b", "id": "i"}, lambda name: "s")


def test_json_bodies_keep_values_as_data() -> None:
    body = {"note": "{{ id }}", "{{ id }}": ["{{ id }}", 3, None]}
    rendered = render_value(body, {"id": '$(x) "quoted" \\'}, context="text")
    assert rendered == {
        "note": '$(x) "quoted" \\',
        '$(x) "quoted" \\': ['$(x) "quoted" \\', 3, None],
    }
    assert secrets_used({"h": ["{{ secrets.a }}"], "{{ secrets.b }}": "{{ c }}"}) == {"a", "b"}
    # one pass: a value that looks like a reference stays text, it never reaches a secret
    assert render("{{ id }}", {"id": "{{ secrets.k }}"}, lambda name: "SECRET") == "{{ secrets.k }}"


_CATASTROPHIC = """
from opsconsole.artifacts import ResponseArtifact
from opsconsole.expectations import evaluate_http
from opsconsole.steps.http import HttpExpect
expect = HttpExpect.model_validate({"body_matches": ["(a+)+$"], "body_not_matches": ["(x+x+)+y"]})
response = ResponseArtifact(status=200, reason="OK", body="a" * 5000 + "!" + "x" * 5000)
for assertion in evaluate_http(expect, response):
    print(assertion.name, assertion.ok, assertion.detail)
"""


def test_a_catastrophic_pattern_on_a_response_is_stopped_and_fails_the_check() -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CATASTROPHIC],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("matching a pattern against the response never ended")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "status True 200 OK"
    assert lines[1].startswith("body matches False the pattern /(a+)+$/ took longer than 1s")
    assert lines[2].startswith("body must not match False the pattern /(x+x+)+y/ took longer")


def test_pattern_timeout_is_an_operator_error() -> None:
    with pytest.raises(PatternTimeout, match="simplify it"):
        search("(a|aa)+$", "a" * 5000 + "!", timeout=0.2)
