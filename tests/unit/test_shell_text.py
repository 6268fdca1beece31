"""Shell text read as a person reads it: prompts, output, continuations, placeholders."""

from __future__ import annotations

import pytest

from opsconsole.shell_text import (
    Placeholder,
    command_title,
    first_command,
    looks_like_command,
    shell_values,
    split_block,
)


def test_dollar_prompts_are_commands_and_the_rest_is_expected_output() -> None:
    block = split_block("bash", "$ kubectl get pods\nNAME   READY\napi    1/1\n$ ls /tmp\nx\n")
    assert block.commands == "kubectl get pods\nls /tmp"
    assert block.expected_output == "NAME   READY\napi    1/1\nx"
    assert block.prompted


def test_a_block_without_prompts_is_a_script_run_as_written() -> None:
    for language in ("bash", "sh", "console", "shell-session", "zsh"):
        block = split_block(language, "uptime\ndf -h /\n")
        assert (block.commands, block.expected_output, block.prompted) == (
            "uptime\ndf -h /",
            None,
            False,
        ), language


def test_backslash_and_pipe_continuations_join_across_a_prompt_line() -> None:
    body = (
        "$ kubectl get pods \\\n"
        "    -n payments |\n"
        "  grep api &&\n"
        "> echo found\n"
        "api-1   1/1\n"
        "found\n"
    )
    block = split_block("console", body)
    assert block.commands == "kubectl get pods \\\n    -n payments |\n  grep api &&\necho found"
    assert block.expected_output == "api-1   1/1\nfound"


def test_a_gt_line_after_output_is_output_not_a_command() -> None:
    block = split_block("console", "$ echo hi\nhi\n> quoted reply\n")
    assert block.commands == "echo hi"
    assert block.expected_output == "hi\n> quoted reply"


def test_hash_is_a_root_prompt_in_a_transcript() -> None:
    block = split_block("console", "# apt-get install -y jq\nReading package lists... Done\n")
    assert block.commands == "apt-get install -y jq"
    assert block.expected_output == "Reading package lists... Done"
    # beside $ prompts in a bash block too
    mixed = split_block("bash", "$ id -u\n1000\n# systemctl restart api\n")
    assert mixed.commands == "id -u\nsystemctl restart api"


def test_hash_is_a_comment_in_a_script_and_a_prose_hash_line_is_never_run() -> None:
    script = split_block("bash", "# systemctl restart api\nuptime\n")
    assert script.commands == "# systemctl restart api\nuptime"  # bash reads it as a comment
    assert not script.prompted
    # in a transcript, a '# ' line that is not a command stays a comment / output
    transcript = split_block(
        "console", "# Check the disk first\n$ df -h\nFilesystem\n# done here\n"
    )
    assert transcript.commands == "# Check the disk first\ndf -h"
    assert transcript.expected_output == "Filesystem\n# done here"


def test_host_prompts_in_transcripts() -> None:
    block = split_block("shell-session", "deploy@web-1:~/app$ git pull\nAlready up to date.\n")
    assert block.commands == "git pull"
    assert block.expected_output == "Already up to date."
    root = split_block("console", "root@web-1:~# systemctl reload nginx\n")
    assert root.commands == "systemctl reload nginx"


@pytest.mark.parametrize(
    "line",
    [
        "kubectl get pods -n payments",
        "$ anything at all",
        "./scripts/drain.sh --node worker-3",
        "/usr/local/bin/backup --full",
        "LOG_LEVEL=debug ./bin/api --check",
        "FOO=1 BAR=2 npm run migrate",
        "sudo systemctl restart api",
        "make build",
        "find . -name '*.log'",
        "cd /srv/app",
    ],
)
def test_lines_that_read_as_commands(line: str) -> None:
    assert looks_like_command(line)


@pytest.mark.parametrize(
    "line",
    [
        "make sure the dashboards are green before you go on.",
        "find the logs in the usual place",
        "NAME    READY   STATUS",
        "server:",
        '{"status": "ok"}',
        "2024-01-01T10:00:00Z ERROR upstream timed out",
        "/etc/nginx/nginx.conf",
        "PORT=8080",
        "GIVEN  caller has BanMembers permission",
        "Sandbox server name:  chopsticks-e2e-sandbox",
    ],
)
def test_lines_that_are_prose_or_data(line: str) -> None:
    assert not looks_like_command(line)


def test_titles_are_the_first_command_without_marks_cut_at_a_word() -> None:
    run = (
        'curl -sS -X POST "${URL}/v1/device/session/start" \\\n'
        '  -H "x-token: ${TOKEN}" \\\n  -d @body.json'
    )
    assert (
        first_command(run)
        == 'curl -sS -X POST "${URL}/v1/device/session/start" -H "x-token: ${TOKEN}" -d @body.json'
    )
    title = command_title(run)
    assert len(title) <= 70 and title.endswith("…") and "\\" not in title
    assert title == 'curl -sS -X POST "${URL}/v1/device/session/start" -H "x-token:…'
    assert command_title("kubectl get pods |\n  grep api\nls") == "kubectl get pods | grep api"
    assert command_title("# Restart the broker\nsystemctl restart broker") == "Restart the broker"
    assert command_title("#!/bin/bash\n\nset -euo pipefail\n") == "set -euo pipefail"


def test_angle_placeholders_not_redirections_heredocs_html_or_process_substitution() -> None:
    values = shell_values(
        "kubectl -n <namespace> get pods <POD_NAME> > out.txt\n"
        "sort < input.txt <(ls) 2>&1 <br> <<<'here'\n"
        "cat <<EOF\n<in-heredoc>\nEOF\n"
        "echo done  # replace <commented>\n"
    )
    assert [(p.name, p.kind, p.text) for p in values.placeholders] == [
        ("namespace", "angle", "<namespace>"),
        ("POD_NAME", "angle", "<POD_NAME>"),
        ("in-heredoc", "angle", "<in-heredoc>"),
    ]


def test_variables_used_but_never_set_are_placeholders_once_in_order() -> None:
    values = shell_values(
        'git log "$PREVIOUS_SHA..HEAD" && echo ${ENV} $PREVIOUS_SHA\n'
        "echo $HOME $PATH $1 $? ${#ENV} ${REGION:-eu} ${ZONE:+x} '$QUOTED' \\$ESCAPED\n"
    )
    assert values.placeholders == [
        Placeholder("PREVIOUS_SHA", "variable", False, "$PREVIOUS_SHA"),
        Placeholder("ENV", "variable", False, "${ENV}"),
    ]


def test_variables_set_earlier_are_not_placeholders() -> None:
    run = (
        "export NS=payments\n"
        "TAG=$(git describe)\n"
        "read -r -p 'Release? ' RELEASE OTHER\n"
        "local DEPTH=3\n"
        "for POD in a b; do echo $POD; done\n"
        "declare -x REGION=eu\n"
        'kubectl -n "$NS" set image deploy/api api=api:$TAG $RELEASE $OTHER $DEPTH $REGION $KNOWN\n'
    )
    values = shell_values(run, {"KNOWN"})
    assert values.placeholders == []
    assert values.sets == ["NS", "TAG", "RELEASE", "OTHER", "DEPTH", "POD", "REGION"]


def test_a_use_before_the_assignment_or_in_a_prefix_assignment_is_a_placeholder() -> None:
    values = shell_values("echo $LATER\nLATER=1\nONLY_FOR=1 env $ONLY_FOR\nX=$X:more\n")
    assert [p.name for p in values.placeholders] == ["LATER", "ONLY_FOR", "X"]
    assert values.sets == ["LATER", "X"]  # ONLY_FOR=1 env ... sets it only for env


def test_quoted_heredocs_do_not_expand_and_unquoted_ones_do() -> None:
    values = shell_values("cat <<'EOF'\n$LITERAL\nEOF\ncat <<-END\n\t$EXPANDED\n\tEND\n")
    assert [p.text for p in values.placeholders] == ["$EXPANDED"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_TOKEN", True),
        ("db_password", True),
        ("SMTP_PASSWD", True),
        ("client-secret", True),
        ("SSH_KEY", True),
        ("aws_credentials", True),
        ("namespace", False),
        ("PREVIOUS_SHA", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    (placeholder,) = shell_values(f"echo <{name}>").placeholders
    assert placeholder.secret is secret
