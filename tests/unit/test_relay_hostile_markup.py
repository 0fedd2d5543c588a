"""Plain text for content rules: every spelling of a word reads as that word."""

from __future__ import annotations

import pytest
from imtegrity_proxy.policy.redact import (
    visible_characters,
)
from imtegrity_proxy.protocol.text import markup_to_plain


@pytest.mark.parametrize(
    "markup",
    [
        "se&#99;ret",
        "se&#x63;ret",
        "se&#99ret",
        "se<sub></sub>cret",
        "se<!-- x -->cret",
        "se<!-- a > b -->cret",
        "<p>se<i></i>cret",
        "se\u00adcret",
        "se\u200bcret",
        "se\u200ccret",
        "se\u200dcret",
        "se\u2060cret",
        "se\ufeffcret",
        "se&shy;cret",
        "se&#8203;cret",
    ],
)
def test_markup_spellings_read_as_plain(markup: str) -> None:
    assert markup_to_plain(markup) == "secret"
    assert visible_characters(markup).text == "secret"


def test_markup_entities_decoded_once() -> None:
    # "&amp;lt;" shows as "&lt;" on screen, not "<".
    assert markup_to_plain("a &amp;lt; b") == "a &lt; b"


def test_text_without_tags_keeps_angle_brackets() -> None:
    assert markup_to_plain("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
