"""Message text: charsets of ICBM fragments and chat, and markup to plain text."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

from .enums import Charset

# Tags of the HTML subset AIM clients send. Only ``looks_like_markup`` uses this list.
_MARKUP_TAG = re.compile(r"<\s*/?\s*(html|body|font|br|b|i|u|a|p|span|div|em|strong)\b", re.I)

_ANY_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.S)

# Names the archive records for each charset.
CHARSET_NAMES = {
    Charset.ASCII: "ascii",
    Charset.UCS2: "ucs-2",
    Charset.LATIN1: "latin-1",
}


def decode_fragment_text(charset: int, data: bytes) -> tuple[str, str]:
    """Decode one ICBM text fragment; return (text, charset name).

    Charset 0x0000 is ASCII on paper, but clients send UTF-8 under it, so valid
    UTF-8 is decoded as UTF-8. UCS-2 is decoded as UTF-16BE, so surrogate pairs
    (emoji) survive. Bytes that do not decode are replaced with U+FFFD, never
    dropped, and the charset name says so.
    """
    if charset == Charset.UCS2:
        return _decode_or_replace(data, "utf-16-be", "ucs-2")
    if charset == Charset.LATIN1:
        return data.decode("latin-1"), "latin-1"
    if charset == Charset.ASCII:
        if data.isascii():
            return data.decode("ascii"), "ascii"
        return _decode_utf8_or_latin1(data)
    # An unknown charset: keep what UTF-8 gives, and name the code.
    text, _ = _decode_or_replace(data, "utf-8", "utf-8")
    return text, f"unknown-0x{charset:04x}"


def encode_fragment_text(text: str) -> tuple[int, bytes]:
    """Pick the narrowest charset that holds ``text``; return (charset, bytes)."""
    if text.isascii():
        return Charset.ASCII, text.encode("ascii")
    try:
        return Charset.LATIN1, text.encode("latin-1")
    except UnicodeEncodeError:
        return Charset.UCS2, text.encode("utf-16-be")


def decode_chat_text(encoding: str | None, data: bytes) -> tuple[str, str]:
    """Decode chat text by the encoding name of TLV 0x02 in the message info."""
    name = (encoding or "us-ascii").strip().lower()
    if name.startswith("unicode"):
        return _decode_or_replace(data, "utf-16-be", "ucs-2")
    if name in {"iso-8859-1", "latin-1", "latin1"}:
        return data.decode("latin-1"), "latin-1"
    if data.isascii():
        return data.decode("ascii"), "ascii"
    return _decode_utf8_or_latin1(data)


def decode_legacy_text(data: bytes) -> tuple[str, str]:
    """Decode text that names no charset (ICQ-style messages): ASCII, UTF-8, else ISO-8859-1."""
    if data.isascii():
        return data.decode("ascii"), "ascii"
    return _decode_utf8_or_latin1(data)


def _decode_or_replace(data: bytes, codec: str, name: str) -> tuple[str, str]:
    try:
        return data.decode(codec), name
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), f"{name} (invalid bytes replaced)"


def _decode_utf8_or_latin1(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


class _TextExtractor(HTMLParser):
    """Collect character data; a <br> or a closing block tag ends a line.

    Comments, processing instructions and declarations produce no data, so
    they vanish from the text as they do on screen.
    """

    LINE_BREAKS = frozenset({"br", "p", "div"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "div"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def looks_like_markup(text: str) -> bool:
    return _MARKUP_TAG.search(text) is not None


def is_invisible(char: str) -> bool:
    """Return True for a format character (Unicode category Cf), which takes no space.

    These include the soft hyphen U+00AD, the zero-width space, joiners and
    word joiner (U+200B, U+200C, U+200D, U+2060) and the byte order mark U+FEFF.
    """
    return unicodedata.category(char) == "Cf"


def remove_invisible(text: str) -> str:
    """Drop format characters, so that one hidden inside a word cannot split it for a rule."""
    return "".join(char for char in text if not is_invisible(char))


def markup_to_plain(text: str) -> str:
    """Return the text a reader sees: tags and comments dropped, entities decoded.

    AIM clients render every message as HTML, so text is always parsed as
    markup, whether or not it contains a tag. Format characters such as the
    soft hyphen and zero-width space are removed as well.
    """
    extractor = _TextExtractor()
    try:
        extractor.feed(text)
        extractor.close()
    except AssertionError:
        # html.parser raises AssertionError on a "<![" section with an unknown
        # keyword (CPython 3.11 _markupbase), so fall back to removing whole tags.
        return remove_invisible(html.unescape(_ANY_TAG.sub("", text)).strip("\n"))
    # convert_charrefs=True has decoded every entity already: decoding again
    # would turn a literal "&amp;lt;" into "<".
    return remove_invisible("".join(extractor.parts).strip("\n"))
