"""Reading a Corefile, and adding or removing the operator's marked section byte for byte.

The reader understands enough of the Corefile syntax (CoreDNS's variant of the
Caddyfile) to find the server blocks with their zones and ports, the
top-level ``import`` lines, and the ``reload`` and ``bind`` directives. It
does not expand snippets or imports.

The operator's section is appended at the end, between a BEGIN and an END
comment line, and starts with a newline of its own::

    <the user's Corefile, unchanged>
    (newline)
    # BEGIN imtegrity.io/dns-override ...
    <server blocks>
    # END imtegrity.io/dns-override

Removing the section cuts exactly those bytes, so the user's text comes back
unchanged, provided that the section and the newline before it were not edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch

BEGIN_MARKER = (
    "# BEGIN imtegrity.io/dns-override: written by imtegrity-operator, "
    "which overwrites edits up to the END line"
)
END_MARKER = "# END imtegrity.io/dns-override"
DEFAULT_DNS_PORT = 53
# Prefixes a server block key may carry (CoreDNS's transports).
SCHEMES = ("dns://", "tls://", "grpc://", "https://", "quic://", "https3://")


class CorefileError(ValueError):
    """A Corefile that the operator must not edit, such as one with a broken section."""


@dataclass(frozen=True)
class Token:
    text: str
    line: int


def tokenize(text: str) -> list[Token]:
    """Split a Corefile into tokens: whitespace separates, quotes group, ``#`` comments."""
    tokens: list[Token] = []
    line = 1
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\n":
            line += 1
            index += 1
        elif char.isspace():
            index += 1
        elif char == "#":
            while index < len(text) and text[index] != "\n":
                index += 1
        elif char == '"':
            start_line = line
            index += 1
            value = []
            while index < len(text) and text[index] != '"':
                if text[index] == "\\" and index + 1 < len(text):
                    index += 1
                if text[index] == "\n":
                    line += 1
                value.append(text[index])
                index += 1
            index += 1  # the closing quote
            tokens.append(Token("".join(value), start_line))
        else:
            start = index
            while index < len(text) and not text[index].isspace() and text[index] not in '"':
                index += 1
            word = text[start:index]
            # A brace glued to a word, as in ".:53{", is still a brace.
            if word.endswith("{") and word != "{":
                tokens.append(Token(word[:-1], line))
                tokens.append(Token("{", line))
            else:
                tokens.append(Token(word, line))
    return tokens


@dataclass
class ServerBlock:
    """One server block: its keys and its first-level directives (the tokens of each line)."""

    keys: list[str]
    directives: list[list[str]] = field(default_factory=list)

    def directive(self, name: str) -> list[str] | None:
        """Return the arguments of the first directive called ``name``, or None."""
        for tokens in self.directives:
            if tokens and tokens[0] == name:
                return tokens[1:]
        return None


@dataclass
class Corefile:
    blocks: list[ServerBlock]
    imports: list[str]


def parse(text: str) -> Corefile:
    """Parse the structure of a Corefile; raise ``CorefileError`` on unbalanced braces."""
    blocks: list[ServerBlock] = []
    imports: list[str] = []
    pending: list[Token] = []  # top-level tokens since the last block or import
    depth = 0
    current: ServerBlock | None = None
    directive: list[str] = []
    directive_line = -1
    for token in tokenize(text):
        if token.text == "{":
            depth += 1
            if depth == 1:
                keys = [t.text.strip(",") for t in pending if t.text.strip(",")]
                current = ServerBlock(keys=keys)
                blocks.append(current)
                pending = []
            continue
        if token.text == "}":
            if depth == 0:
                raise CorefileError(f"line {token.line}: '}}' without a matching '{{'")
            depth -= 1
            if depth == 0:
                current = None
            continue
        if depth == 0:
            pending.append(token)
            if len(pending) == 2 and pending[0].text == "import":
                imports.append(token.text)
                pending = []
        elif depth == 1 and current is not None:
            if token.line != directive_line:
                directive = []
                current.directives.append(directive)
                directive_line = token.line
            directive.append(token.text)
    if depth != 0:
        raise CorefileError("a server block is not closed: '{' without a matching '}'")
    return Corefile(blocks=blocks, imports=imports)


def parse_key(key: str) -> tuple[str, int | None]:
    """Split a server block key into (zone with a trailing dot, port or None)."""
    text = key.strip().strip(",").lower()
    for scheme in SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    host, separator, port = text.rpartition(":")
    if separator and port.isdigit() and "]" not in port:
        text = host
        port_number: int | None = int(port)
    else:
        port_number = None
    zone = text if text.endswith(".") else f"{text}."
    return zone, port_number


def zones(corefile: Corefile) -> set[tuple[str, int]]:
    """Return every (zone, port) that a server block serves; no port means 53."""
    found = set()
    for block in corefile.blocks:
        if block.keys and block.keys[0].startswith("("):
            continue  # a snippet, not a server block
        for key in block.keys:
            zone, port = parse_key(key)
            found.add((zone, port or DEFAULT_DNS_PORT))
    return found


def root_block(corefile: Corefile) -> ServerBlock | None:
    """Return the server block for the root zone ``.``, which answers every other name."""
    for block in corefile.blocks:
        if any(parse_key(key)[0] == "." for key in block.keys):
            return block
    return None


def root_port(corefile: Corefile) -> int:
    block = root_block(corefile)
    if block is not None:
        for key in block.keys:
            zone, port = parse_key(key)
            if zone == ".":
                return port or DEFAULT_DNS_PORT
    return DEFAULT_DNS_PORT


def has_reload(corefile: Corefile) -> bool:
    """Return whether a server block loads the reload plugin, which rereads changes."""
    return any(block.directive("reload") is not None for block in corefile.blocks)


def server_import_dirs(corefile: Corefile) -> list[str]:
    """Return the directories whose ``*.server`` files a top-level ``import`` loads."""
    dirs = []
    for pattern in corefile.imports:
        directory, _, name = pattern.rpartition("/")
        if fnmatch("imtegrity.server", name):
            dirs.append(directory or ".")
    return dirs


# The marked section.


def split_section(text: str) -> tuple[str, str | None]:
    """Return (the user's text, the section's inner text or None when there is no section).

    Raises ``CorefileError`` when the markers are broken, because then the
    operator cannot tell its lines from the user's.
    """
    begin = f"\n{BEGIN_MARKER}\n"
    count = text.count(BEGIN_MARKER)
    if count == 0:
        if END_MARKER in text:
            raise CorefileError(f"the Corefile has {END_MARKER!r} without its BEGIN line")
        return text, None
    if count > 1:
        raise CorefileError("the Corefile has more than one imtegrity.io/dns-override section")
    start = text.find(begin)
    if start < 0:
        raise CorefileError("the line before the imtegrity.io/dns-override BEGIN line was changed")
    end_line = f"{END_MARKER}\n"
    end = text.find(end_line, start + len(begin))
    if end < 0:
        raise CorefileError("the imtegrity.io/dns-override section has no END line")
    inner = text[start + len(begin) : end]
    return text[:start] + text[end + len(end_line) :], inner


def with_section(user_text: str, blocks: str) -> str:
    """Return ``user_text`` with the section appended; no blocks means no section."""
    if not blocks:
        return user_text
    return f"{user_text}\n{BEGIN_MARKER}\n{blocks}{END_MARKER}\n"
