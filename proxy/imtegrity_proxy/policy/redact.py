"""Redaction: replace what a rule matches in message text, keeping markup and charsets valid.

Rules match the plain text shown to a reader, but messages carry AIM's HTML subset.
``visible_characters`` walks the markup once and records, for each visible
character, the span of markup it came from: one character of a text node, or a
whole entity such as ``&amp;``. A match is then replaced span by span, so tags
and attribute values are never touched and an entity is replaced whole.

Each rewritten ICBM text fragment keeps its charset when the new text fits it
and is re-encoded as UCS-2 otherwise; fragments whose text did not change keep
their original bytes. Chat text and rendezvous invitation text work the same way, switching the
encoding name to ``unicode-2-0`` when they must. Channel-4 (ICQ-style) text is
not markup: its characters are replaced one for one, and the text is
re-encoded as UTF-8 when the replacement does not fit its charset.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..protocol.buffer import u16
from ..protocol.chat import ENCODING_TLV, MESSAGE_INFO_TLV, TEXT_TLV, ChatMessage
from ..protocol.enums import Charset, IcbmTlv
from ..protocol.icbm import (
    ICQ_PLAIN_TEXT,
    TEXT_ID,
    Fragment,
    Icbm,
    IcqMessage,
    MessageBody,
    TextPart,
)
from ..protocol.rendezvous import Rendezvous, with_invitation
from ..protocol.text import is_invisible, remove_invisible
from ..protocol.tlv import Tlv, Tlvs, encode_tlvs, find_tlv, parse_tlvs, replace_tlv

# A tag as html.parser recognises one: "<" then a letter, "/", "!" or "?".
_TAG = re.compile(r"<!--.*?-->|<[A-Za-z/!?][^>]*>", re.S)
_TAG_NAME = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)")
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);?")
_LINE_BREAK_TAGS = frozenset({"br"})
_LINE_BREAK_END_TAGS = frozenset({"p", "div"})

# Codecs of the charset names that decode_fragment_text and decode_chat_text report.
_CODECS = {"ascii": "ascii", "utf-8": "utf-8", "latin-1": "latin-1", "ucs-2": "utf-16-be"}

UCS2_CHAT_ENCODING = b"unicode-2-0"


class RedactionError(Exception):
    """A message that the proxy cannot rewrite, so a redaction must block it instead."""


@dataclass(frozen=True, slots=True)
class VisibleText:
    """The plain text of some markup, and for each character the markup span it came from.

    A span is None for a line break that a tag stands for.
    """

    text: str
    spans: tuple[tuple[int, int] | None, ...]


def visible_characters(markup: str) -> VisibleText:
    """Return the plain text of ``markup`` with each character's source span.

    Like ``markup_to_plain``, every text is parsed as markup, and format
    characters (soft hyphen, zero-width space and the like) are left out.
    """
    chars: list[str] = []
    spans: list[tuple[int, int] | None] = []
    index = 0
    while index < len(markup):
        tag = _TAG.match(markup, index) if markup[index] == "<" else None
        if tag is not None:
            if _tag_breaks_line(tag.group()):
                chars.append("\n")
                spans.append(None)
            index = tag.end()
            continue
        entity = _ENTITY.match(markup, index) if markup[index] == "&" else None
        if entity is not None:
            decoded = remove_invisible(html.unescape(entity.group()))
            if decoded != entity.group():
                chars.extend(decoded)
                spans.extend([(index, entity.end())] * len(decoded))
                index = entity.end()
                continue
        if not is_invisible(markup[index]):
            chars.append(markup[index])
            spans.append((index, index + 1))
        index += 1
    return VisibleText("".join(chars), tuple(spans))


def _tag_breaks_line(tag: str) -> bool:
    name = _TAG_NAME.match(tag)
    if name is None:
        return False
    tag_name = name.group(1).lower()
    if tag.startswith("</"):
        return tag_name in _LINE_BREAK_END_TAGS
    return tag_name in _LINE_BREAK_TAGS


def redaction_map(markup: str, regex: re.Pattern[str], replacement: str) -> list[str]:
    """Return, for each character of ``markup``, the text that replaces it.

    Every visible character inside a match becomes ``replacement``, HTML-escaped
    because clients render the text as markup. Characters outside matches map to
    themselves.
    """
    visible = visible_characters(markup)
    written = html.escape(replacement)
    output = list(markup)
    replaced: set[tuple[int, int]] = set()
    for match in regex.finditer(visible.text):
        for position in range(match.start(), match.end()):
            span = visible.spans[position]
            if span is None or span in replaced:
                continue
            replaced.add(span)
            start, end = span
            output[start] = written
            for inside in range(start + 1, end):
                output[inside] = ""
    return output


def redact_text(markup: str, regex: re.Pattern[str], replacement: str) -> str:
    return "".join(redaction_map(markup, regex, replacement))


def redact_message_body(body: MessageBody, regex: re.Pattern[str], replacement: str) -> bytes:
    """Return the ICBM TLV 0x02 value of ``body`` with every match redacted."""
    output = redaction_map(body.markup, regex, replacement)
    fragments: list[Fragment] = []
    position = 0
    parts = iter(body.parts)
    for fragment in body.fragments:
        if fragment.id != TEXT_ID:
            fragments.append(fragment)
            continue
        part = next(parts)
        text = "".join(output[position : position + len(part.text)])
        position += len(part.text)
        if text == part.text:
            fragments.append(fragment)
            continue
        data = _encode_part(part, text)
        fragments.append(Fragment(fragment.id, fragment.version, data))
    return b"".join(fragment.to_bytes() for fragment in fragments)


def _encode_part(part: TextPart, text: str) -> bytes:
    """Encode a rewritten fragment in its own charset, or as UCS-2 when it does not fit."""
    codec = _CODECS.get(part.charset_name)
    if codec is not None:
        try:
            return u16(part.charset) + u16(part.subset) + text.encode(codec)
        except UnicodeEncodeError:
            pass
    return u16(Charset.UCS2) + u16(0) + text.encode("utf-16-be")


def replace_icbm_tlvs(body: bytes, icbm: Icbm, tlvs: Tlvs) -> bytes:
    """Return an ICBM SNAC body with its trailing TLVs replaced and its head kept byte for byte."""
    head_size = len(body) - len(encode_tlvs(icbm.tlvs))
    return body[:head_size] + encode_tlvs(tlvs)


def redact_icbm(body: bytes, icbm: Icbm, regex: re.Pattern[str], replacement: str) -> bytes:
    """Return the SNAC body of ``icbm`` (parsed from ``body``) with its text redacted."""
    message = icbm.message
    if message is None:
        return body
    value = redact_message_body(message, regex, replacement)
    return replace_icbm_tlvs(body, icbm, replace_tlv(icbm.tlvs, IcbmTlv.MESSAGE, value))


def redact_chat(
    body: bytes, message: ChatMessage, regex: re.Pattern[str], replacement: str
) -> bytes:
    """Return the chat SNAC body of ``message`` (parsed from ``body``) with its text redacted."""
    text = redact_text(message.text, regex, replacement)
    codec = _CODECS.get(message.charset_name)
    raw: bytes | None = None
    if codec is not None:
        try:
            raw = text.encode(codec)
        except UnicodeEncodeError:
            raw = None
    info_raw = find_tlv(message.tlvs, MESSAGE_INFO_TLV) or b""
    info = parse_tlvs(info_raw, "chat message info")
    if raw is None:
        raw = text.encode("utf-16-be")
        info = _set_tlv(info, ENCODING_TLV, UCS2_CHAT_ENCODING)
    info = _set_tlv(info, TEXT_TLV, raw)
    tlvs = replace_tlv(message.tlvs, MESSAGE_INFO_TLV, encode_tlvs(info))
    head_size = len(body) - len(encode_tlvs(message.tlvs))
    return body[:head_size] + encode_tlvs(tlvs)


def _set_tlv(tlvs: Tlvs, tlv_type: int, value: bytes) -> Tlvs:
    if find_tlv(tlvs, tlv_type) is None:
        return (*tlvs, Tlv(tlv_type, value))
    return replace_tlv(tlvs, tlv_type, value)


def redact_icq(
    body: bytes, icbm: Icbm, message: IcqMessage, regex: re.Pattern[str], replacement: str
) -> bytes:
    """Return the SNAC body of a channel-4 ``icbm`` with its text redacted.

    Only plain-text messages are rewritten. Other types hold fields whose
    separators the plain text shows as line breaks, so they raise RedactionError.
    """
    if message.message_type != ICQ_PLAIN_TEXT:
        raise RedactionError(
            f"channel-4 message type 0x{message.message_type:02x} is not plain text"
        )
    output = list(message.text)
    visible = [index for index, char in enumerate(message.text) if not is_invisible(char)]
    for match in regex.finditer(message.plain):
        for position in range(match.start(), match.end()):
            output[visible[position]] = replacement
    text = "".join(output)
    codec = _CODECS.get(message.charset_name, "utf-8")
    try:
        raw = text.encode(codec)
    except UnicodeEncodeError:
        # NOTE: a client reading ISO-8859-1 shows the UTF-8 replacement as two or
        # three other characters; the redacted text stays hidden either way.
        raw = text.encode("utf-8")
    value = message.with_raw(raw)
    return replace_icbm_tlvs(body, icbm, replace_tlv(icbm.tlvs, IcbmTlv.RENDEZVOUS, value))


def redact_invitation(
    body: bytes, icbm: Icbm, rendezvous: Rendezvous, regex: re.Pattern[str], replacement: str
) -> bytes:
    """Return the SNAC body of a channel-2 ``icbm`` with its invitation text redacted."""
    invitation = rendezvous.invitation
    block = find_tlv(icbm.tlvs, IcbmTlv.RENDEZVOUS)
    if invitation is None or block is None:
        return body
    text = redact_text(invitation.markup, regex, replacement)
    codec = _CODECS.get(invitation.charset_name)
    encoding: str | None = None
    raw: bytes | None = None
    if codec is not None:
        try:
            raw = text.encode(codec)
        except UnicodeEncodeError:
            raw = None
    if raw is None:
        raw = text.encode("utf-16-be")
        encoding = UCS2_CHAT_ENCODING.decode("ascii")
    value = with_invitation(block, rendezvous, raw, encoding)
    return replace_icbm_tlvs(body, icbm, replace_tlv(icbm.tlvs, IcbmTlv.RENDEZVOUS, value))
