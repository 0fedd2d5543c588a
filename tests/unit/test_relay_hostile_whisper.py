"""Chat whispers: the one user a chat message goes to."""

from __future__ import annotations

import os

from imtegrity_proxy.protocol import chat
from imtegrity_proxy.protocol.snac import parse_snac
from imtegrity_proxy.protocol.tlv import Tlv


def chat_send(whisper_to: str | None, public: bool = False) -> chat.ChatMessage:
    raw = chat.encode_chat_send(1, os.urandom(8), "psst", whisper_to)
    message = chat.parse_chat_send(parse_snac(raw))
    if public:
        tlvs = (Tlv(chat.PUBLIC_TLV, b""), *message.tlvs)
        return chat.ChatMessage(
            message.cookie,
            message.channel,
            tlvs,
            message.raw_text,
            message.text,
            message.encoding,
            message.charset_name,
        )
    return message


def test_whisper_target() -> None:
    assert chat_send("Carol").whisper_target == "Carol"
    assert chat_send(None).whisper_target is None
    # The server sends a message with the public flag to the whole room.
    assert chat_send("Carol", public=True).whisper_target is None
