"""Shell text as a person reads it: prompts, expected output, continuations, placeholders.

Pure functions (no I/O, no subprocess) the loader uses to turn a fenced block written
for people into the commands it means. :class:`Placeholder` is the interface the
running half (one shell session per run) reads from ``CommandSpec.placeholders``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COMMAND_WORDS",
    "SHELL_LANGUAGES",
    "TRANSCRIPT_LANGUAGES",
    "WELL_KNOWN_VARIABLES",
    "Placeholder",
    "ShellBlock",
    "SHELL_DIALECTS",
    "ShellValues",
    "command_title",
    "first_command",
    "is_secret_name",
    "looks_like_command",
    "shell_dialect",
    "shell_values",
    "split_block",
    "transcript",
]


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A value the operator must supply before a plain shell block runs.

    ``name`` is the placeholder's name (``namespace``, ``PREVIOUS_SHA``, ``ENV``);
    ``kind`` is ``"angle"`` for ``<namespace>``-style text and ``"variable"`` for a
    shell variable used but never set by an earlier block (``$PREVIOUS_SHA``,
    ``${ENV}``); ``secret`` when the name looks like a credential (TOKEN, SECRET,
    PASSWORD, PASSWD, KEY, CREDENTIAL; case-insensitive): ask for it hidden and redact
    it; ``text`` is the exact text in the command (``<namespace>``, ``$PREVIOUS_SHA``,
    ``${ENV}``), so the runner can pass the value as a shell variable in its place
    rather than pasting the value into the command.
    """

    name: str
    kind: Literal["angle", "variable"]
    secret: bool
    text: str


# -- the session's shell ----------------------------------------------------------------------

#: the shells the session protocol speaks (front matter ``shell``) -> its dialect
SHELL_DIALECTS = {"bash": "bash", "sh": "sh", "dash": "sh", "zsh": "zsh"}


def shell_dialect(shell: str | None) -> str | None:
    """The dialect (``bash``, ``sh``, ``zsh``) the session speaks with ``shell`` (a name or
    a path, as Runme's ``shell`` front matter gives it; None: bash), or None when the
    session cannot run it (fish, csh, powershell...)."""
    if not shell:
        return "bash"
    return SHELL_DIALECTS.get(shell.strip().rsplit("/", 1)[-1])


# -- languages, prompts and commands ---------------------------------------------------------

#: fence languages whose blocks are shell (a ``console``/``shell-session`` block is a
#: terminal transcript: prompts and output)
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh", "console", "shell-session"})
TRANSCRIPT_LANGUAGES = frozenset({"console", "shell-session"})

#: command words that start a command line in runbooks written for people
COMMAND_WORDS = frozenset(
    """
    ab ansible ansible-playbook apk apt apt-get argocd aws az base64 bash brew bun bundle
    cargo cat cd chmod chown cilium composer consul cp crictl crontab curl cut date dd
    deno df dig dnf docker docker-compose dotnet du echo eksctl env etcdctl eval exec export
    fdisk find flux free gcloud gh git go gpg gradle grep gunzip gzip head helm helmfile
    host hostname htop http httpie id ip iptables istioctl java jq journalctl k9s kafka-topics
    kill killall kind kubeadm kubectl kubectx kubens kustomize less ln ls lsblk lsof make
    minikube mkdir mongo mongosh mount mv mvn mysql nc nerdctl netstat nohup node nomad npm
    npx nslookup oc openssl opsconsole pg_dump pg_restore php pip pip3 pipx pkill pnpm podman
    poetry printf ps psql pytest python python3 rails readlink redis-cli rm rsync ruby scp sed
    service set sh sha256sum sleep source ss ssh ssh-add ssh-keygen sqlite3 stat sudo
    systemctl tail tar tee telnet terraform tofu touch tr traceroute uname unset unzip uv
    vault watch wc wget which whoami wrangler xargs yarn yq yum zsh
    """.split()
)
#: command words that are also common English words: a command only with a shell sign
#: or without an English word after them ("make sure the service is up" is prose)
_ENGLISH_WORDS = frozenset(
    "cat cd cut date echo find free head host id kill kind less make mount service set "
    "sleep source stat tail touch watch which".split()
)
_PROSE_FOLLOWERS = frozenset(
    "a an the sure that this these those it its is are was be to of in on at for your our "
    "their my all any some every out up down sure whether if when".split()
)
_SHELL_SIGN = re.compile(r"(^|\s)-{1,2}\w|[/=$|;&<>\"'`]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
_EXECUTABLE_PATH = re.compile(r"(\.{1,2}/|~/)\S+|/\S*/s?bin/\S+|/\S+\.(sh|py|pl|rb)")
#: ``user@host:~/dir$ `` and ``[user@host dir]$ `` prompts in terminal transcripts
_HOST_PROMPT = re.compile(r"^(\[[^\]\n]{1,80}\]|[\w.-]{1,64}@[\w.-]{1,64}(:[^\s$#]{0,200})?)[$#] ")
_CONTINUED = re.compile(r"(\\|\||&&|\|\|)\s*$")


def looks_like_command(line: str) -> bool:
    """Whether one line reads as a shell command: a ``$ `` prompt, ``VAR=value cmd``,
    a path to an executable or a known command word (not followed by English prose)."""
    text = line.strip()
    if text.startswith("$ ") or _HOST_PROMPT.match(text):
        return True
    words = text.split()
    while words and _ASSIGNMENT.fullmatch(words[0]):
        words = words[1:]
        if not words:
            return False  # only assignments: a .env file is data
    if not words:
        return False
    first = words[0]
    if first == "sudo" and len(words) > 1:
        words = words[1:]
        first = words[0]
    if _EXECUTABLE_PATH.fullmatch(first):
        return True
    if first not in COMMAND_WORDS:
        return False
    if first in _ENGLISH_WORDS:
        rest = " ".join(words[1:])
        if _SHELL_SIGN.search(rest):
            return True
        return len(words) <= 3 and not (
            len(words) > 1 and words[1].lower() in _PROSE_FOLLOWERS
        ) and not text.endswith((".", ":", "?", "!"))
    return not (len(words) > 1 and words[1].lower() in _PROSE_FOLLOWERS)


def _prompted(line: str) -> str | None:
    """The command after a ``$ `` (or ``user@host:~$ ``) prompt, else None."""
    if line.startswith("$ ") or line.rstrip() == "$":
        return line[2:]
    match = _HOST_PROMPT.match(line)
    if match and match.group(0).endswith("$ "):
        return line[match.end() :]
    return None


def _root_prompted(line: str) -> str | None:
    """The command after a root prompt (``# cmd``, ``root@host:~# cmd``), else None."""
    if line.startswith("# "):
        rest = line[2:]
        return rest if rest.strip() and looks_like_command(rest) else None
    match = _HOST_PROMPT.match(line)
    if match and match.group(0).endswith("# "):
        return line[match.end() :]
    return None


@dataclass(frozen=True, slots=True)
class ShellBlock:
    """What a shell block means: the commands to run and the output its author expected."""

    commands: str
    expected_output: str | None
    #: whether the block is a transcript (prompt lines) rather than a script
    prompted: bool


def split_block(language: str | None, body: str) -> ShellBlock:
    """Commands and expected output of a fenced block.

    A block with prompt lines (``$ cmd``; ``# cmd`` as a root prompt in ``console`` and
    ``shell-session`` blocks or beside ``$`` lines) is a transcript: prompt lines and
    their continuations (``> ``, or any line after one ending in ``\\``, ``|``, ``&&``,
    ``||``) are the commands; every other line is expected output, never run. A ``#``
    line that does not read as a command stays a comment. A block without prompt lines is
    a script, run as written.
    """
    lines = body.rstrip("\n").split("\n")
    language = (language or "").lower()
    has_dollar = any(_prompted(line) is not None for line in lines)
    roots = has_dollar or language in TRANSCRIPT_LANGUAGES
    has_root = roots and any(_root_prompted(line) is not None for line in lines)
    if not (has_dollar or has_root):
        script = body.rstrip("\n")
        return ShellBlock(script.strip("\n") and script, None, False)
    commands: list[str] = []
    output: list[str] = []
    open_command = False  # the last line was a command (a ``> `` line continues it)
    continued = False  # ... and it ends in \ | && ||: the next line is part of it
    for line in lines:
        command = _prompted(line)
        if command is None and roots:
            command = _root_prompted(line)
        if command is not None and not continued:
            if command.strip():
                commands.append(command)
                open_command = True
                continued = bool(_CONTINUED.search(command))
            continue
        if continued or (open_command and (line.startswith("> ") or line == ">")):
            text = line[2:] if line.startswith(("> ", "$ ")) else line.removeprefix(">")
            commands.append(text)
            continued = bool(_CONTINUED.search(text))
            continue
        open_command = continued = False
        if line.startswith("#") and not line.startswith("#!") and not output:
            commands.append(line)  # a comment before the first output line
        else:
            output.append(line)
    expected = "\n".join(output).strip("\n")
    return ShellBlock("\n".join(commands), expected or None, True)


def transcript(commands: str) -> str:
    """Commands as a terminal shows them: ``$ `` before each command, ``> `` before the
    lines that continue one (after ``\\``, ``|``, ``&&``, ``||``)."""
    lines, continued = [], False
    for line in commands.split("\n"):
        lines.append(("> " if continued else "$ ") + line)
        continued = bool(_CONTINUED.search(line))
    return "\n".join(lines)


def first_command(commands: str) -> str:
    """The first command of a script, continuation lines joined, without comments,
    prompts or continuation marks (the ``\\`` at a line end)."""
    parts: list[str] = []
    for raw in commands.split("\n"):
        line = raw.strip()
        if not parts and (not line or line.startswith("#")):
            continue
        if line.startswith("$ "):
            line = line[2:].strip()
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        if not _CONTINUED.search(line):
            break
    return " ".join(part for part in parts if part)


def command_title(commands: str, limit: int = 70) -> str:
    """A step title for plain commands: a leading ``# comment`` names the block,
    otherwise its first command, cut at a word boundary to ``limit`` characters."""
    for raw in commands.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#!"):
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip()
            if comment:
                return _cut(comment, limit)
            continue
        break
    return _cut(first_command(commands), limit) or "shell command"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" \\|&;") + "…"


# -- placeholders and the variables a block sets ----------------------------------------------

#: variables a shell or a login provides: using them unset is not asking for a value
WELL_KNOWN_VARIABLES = frozenset(
    """
    HOME PATH USER LOGNAME PWD OLDPWD SHELL TERM LANG LANGUAGE LC_ALL LC_CTYPE TZ TMPDIR
    HOSTNAME HOSTTYPE OSTYPE MACHTYPE UID EUID PPID GROUPS RANDOM SECONDS LINENO IFS PS1 PS2
    PS4 REPLY OPTARG OPTIND PIPESTATUS FUNCNAME BASH BASH_SOURCE BASH_VERSION BASHPID
    BASH_REMATCH COLUMNS LINES EDITOR VISUAL PAGER DISPLAY SSH_AUTH_SOCK SSH_CONNECTION
    SSH_CLIENT SSH_TTY XDG_RUNTIME_DIR XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME
    KUBECONFIG GOPATH CI
    """.split()
)
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
#: lower-case tags that are HTML, not placeholders (``<br>``, ``<details>``)
_HTML_TAGS = frozenset(
    "a abbr b body br code dd del details div dl dt em h1 h2 h3 h4 h5 h6 head hr html i img "
    "ins kbd li ol p pre q s samp small span strong sub summary sup table tbody td th thead "
    "tr u ul var".split()
)
_ANGLE = re.compile(r"(?<![<\w])<([A-Za-z][A-Za-z0-9_-]*)>")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([A-Za-z0-9_.-]+))")
#: the longest ``${...}`` read as one expansion
_MAX_EXPANSION = 1024
#: characters the reader passes over unchanged, per quoting state
_PLAIN_RUNS = {
    "": re.compile(r"[^\\$'\"#<\n;&|()`{} \t]+"),
    "'": re.compile(r"[^']+"),
    '"': re.compile(r'[^\\$"]+'),
}
#: words after which a new simple command starts
_RESERVED = frozenset("if then else elif do while until ! { time coproc".split())
_DECLARERS = frozenset({"export", "local", "declare", "typeset", "readonly"})
#: ``read`` options that take an argument (``-a NAME`` sets NAME)
_READ_OPTIONS_WITH_VALUE = frozenset("-p -t -n -N -d -u -i".split())


def is_secret_name(name: str) -> bool:
    """Whether a name looks like a credential (TOKEN, SECRET, PASSWORD, PASSWD, KEY,
    CREDENTIAL, any case)."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


@dataclass(frozen=True, slots=True)
class ShellValues:
    """Placeholders of one block and the variables it sets, in order of first use."""

    placeholders: list[Placeholder]
    sets: list[str]


class _Scanner:
    """A small reader of shell text: quotes, comments, expansions, heredocs, simple
    commands. Enough to tell a variable's uses from its assignments; not a shell parser
    (nothing here is ever executed)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        #: (position, "use" | "set", name, text)
        self.events: list[tuple[int, str, str, str]] = []
        #: character ranges that are comments (no placeholders there)
        self.comments: list[tuple[int, int]] = []
        self.words: list[str] = []
        self.word: list[str] = []
        self.word_started = False
        self.heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, expands, strip tabs)

    # words and simple commands
    def _end_word(self) -> None:
        if self.word_started:
            self.words.append("".join(self.word))
        self.word = []
        self.word_started = False

    def _end_command(self) -> None:
        self._end_word()
        words, self.words = self.words, []
        at = self.pos
        while words and words[0] in _RESERVED:
            words = words[1:]
        if not words:
            return
        assignments = []
        index = 0
        while index < len(words) and (match := _ASSIGN_WORD.match(words[index])):
            assignments.append(match.group(1))
            index += 1
        command, args = (words[index], words[index + 1 :]) if index < len(words) else ("", [])
        names: list[str] = []
        if not command:
            names = assignments  # ``X=1`` alone sets X; ``X=1 cmd`` only for cmd
        elif command in _DECLARERS:
            names = [a.split("=", 1)[0] for a in args if not a.startswith(("-", "+"))]
        elif command in {"read", "mapfile", "readarray"}:
            skip = False
            for arg in args:
                if skip:
                    skip = False
                elif arg == "-a" or arg in _READ_OPTIONS_WITH_VALUE:
                    skip = arg != "-a"
                elif not arg.startswith("-"):
                    names.append(arg)
        elif command in {"for", "select"} and args:
            names = [args[0]]
        elif command == "getopts" and len(args) >= 2:
            names = [args[1]]
        for name in names:
            if _NAME.fullmatch(name):
                self.events.append((at, "set", name, name))

    # expansions
    def _expansion(self) -> None:
        """At a ``$``: record the variable it reads, if any."""
        text, start = self.text, self.pos
        nxt = text[start + 1 : start + 2]
        if nxt == "{":
            depth, end = 1, start + 2
            # an expansion ends on its line, within a bound (so each ``${`` costs O(1))
            line_end = text.find("\n", start, start + _MAX_EXPANSION)
            line_end = min(len(text), start + _MAX_EXPANSION) if line_end < 0 else line_end
            while depth:
                close = text.find("}", end, line_end)
                if close < 0:
                    break
                depth += text.count("{", end, close) - 1
                end = close + 1
            if depth:  # never closed on its line: not an expansion a person meant
                self.word.append("${")
                self.word_started = True
                self.pos += 2
                return
            inner = text[start + 2 : end - 1]
            match = _NAME.match(inner.lstrip("#!"))
            if match:
                rest = inner.lstrip("#!")[match.end() :]
                operator = rest.lstrip(":")[:1]
                if operator not in {"-", "=", "+"}:  # a default or alternative: unset is fine
                    self.events.append((start, "use", match.group(0), text[start:end]))
                if operator == "=" and not inner.startswith(("#", "!")):
                    self.events.append((end, "set", match.group(0), match.group(0)))
            self.word.append(text[start:end])
            self.word_started = True
            self.pos = end
            return
        match = _NAME.match(text, start + 1)
        if match:
            self.events.append((start, "use", match.group(0), "$" + match.group(0)))
            self.word.append(text[start : match.end()])
            self.word_started = True
            self.pos = match.end()
            return
        self.word.append("$")
        self.word_started = True
        self.pos += 1

    def _heredoc_bodies(self) -> None:
        """After a newline: skip the bodies of pending heredocs (recording uses in those
        that expand)."""
        for delimiter, expands, strip_tabs in self.heredocs:
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    self.pos = end + 1
                    break
                if expands:
                    for match in re.finditer(r"\$(\{[^}\n]*\}?|[A-Za-z_][A-Za-z0-9_]*)", line):
                        body = match.group(1)
                        inner = body.strip("{}").lstrip("#!")
                        name = _NAME.match(inner)
                        rest = inner[name.end() :] if name else ""
                        if name and rest.lstrip(":")[:1] not in {"-", "=", "+"}:
                            self.events.append(
                                (self.pos + match.start(), "use", name.group(0), match.group(0))
                            )
                self.pos = end + 1
        self.heredocs = []

    def scan(self) -> None:
        text = self.text
        quote = ""  # "", "'", '"'
        while self.pos < len(text):
            plain = (_PLAIN_RUNS[quote]).match(text, self.pos)
            if plain:  # a run of characters with no meaning to the reader: one step
                self.word.append(plain.group(0))
                self.word_started = True
                self.pos = plain.end()
                continue
            char = text[self.pos]
            if quote == "'":
                self.word.append(char)
                self.pos += 1
                if char == "'":
                    quote = ""
                continue
            if char == "\\":
                if text[self.pos + 1 : self.pos + 2] == "\n":
                    self.pos += 2  # a line continuation
                    continue
                self.word.append(text[self.pos : self.pos + 2])
                self.word_started = True
                self.pos += 2
                continue
            if char == "$":
                if text[self.pos + 1 : self.pos + 2] == "'" and not quote:
                    quote = "'"
                    self.word.append("$'")
                    self.word_started = True
                    self.pos += 2
                    continue
                self._expansion()
                continue
            if quote == '"':
                self.word.append(char)
                self.pos += 1
                if char == '"':
                    quote = ""
                continue
            if char in "'\"":
                quote = char
                self.word.append(char)
                self.word_started = True
                self.pos += 1
                continue
            if char == "#" and not self.word_started:
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                self.comments.append((self.pos, end))
                self.pos = end
                continue
            if text.startswith("<<<", self.pos):  # a here-string, not a heredoc
                self._end_word()
                self.pos += 3
                continue
            if text.startswith("<<", self.pos):
                match = _HEREDOC.match(text, self.pos)
                if match:
                    quoted = match.group(2) is not None or match.group(3) is not None
                    delimiter = next(g for g in match.group(2, 3, 4) if g is not None)
                    self.heredocs.append((delimiter, not quoted, match.group(1) == "-"))
                    self._end_word()
                    self.pos = match.end()
                    continue
            if char == "\n":
                self._end_command()
                self.pos += 1
                self._heredoc_bodies()
                continue
            if char in ";&|()`":
                self._end_command()
                self.pos += 1
                continue
            if char in " \t":
                self._end_word()
                self.pos += 1
                continue
            self.word.append(char)
            self.word_started = True
            self.pos += 1
        self._end_command()


def shell_values(commands: str, known: set[str] | frozenset[str] = frozenset()) -> ShellValues:
    """Placeholders in ``commands`` and the variables they set.

    ``known`` are variables set by earlier blocks of the runbook. A placeholder is an
    ``<angle-name>`` (not a redirection, a heredoc, ``<(...)`` or an HTML tag) outside
    comments, or a ``$VAR``/``${VAR}`` read (outside single quotes, without a ``:-``
    default) before anything sets it: ``known``, an earlier assignment in the block
    (``X=``, ``export X=``, ``local X``, ``read X``, ``for X in``...) or the shell itself
    (:data:`WELL_KNOWN_VARIABLES`). Each name and kind is listed once, in order of first use.
    """
    scanner = _Scanner(commands)
    scanner.scan()
    events = sorted(scanner.events, key=lambda event: event[0])
    comment_starts = [start for start, _ in scanner.comments]  # in order, never overlapping
    for match in _ANGLE.finditer(commands):
        name = match.group(1)
        if name.lower() in _HTML_TAGS and name == name.lower():
            continue
        before = bisect.bisect_right(comment_starts, match.start()) - 1
        if before >= 0 and match.start() < scanner.comments[before][1]:
            continue
        events.append((match.start(), "angle", name, match.group(0)))
    events.sort(key=lambda event: event[0])
    seen = set(known)
    placeholders: dict[tuple[str, str], Placeholder] = {}
    sets: list[str] = []
    for _, what, name, text in events:
        if what == "set":
            seen.add(name)
            if name not in sets:
                sets.append(name)
        elif what == "angle":
            placeholders.setdefault(
                ("angle", name), Placeholder(name, "angle", is_secret_name(name), text)
            )
        elif name not in seen and name not in WELL_KNOWN_VARIABLES:
            placeholders.setdefault(
                ("variable", name), Placeholder(name, "variable", is_secret_name(name), text)
            )
    return ShellValues(list(placeholders.values()), sets)
