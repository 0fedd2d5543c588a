"""One normal form of screen names everywhere: policy, archive and relay."""

from __future__ import annotations


def test_screen_names_normalised_like_the_server():
    from imtegrity_proxy.archive import normalize_screen_name as archive_normalize
    from imtegrity_proxy.config import normalize_screen_name as config_normalize
    from imtegrity_proxy.protocol.userinfo import normalize_screen_name

    # Go's strings.ToLower maps U+0130 to "i"; Python's str.lower adds U+0307.
    assert normalize_screen_name("R\u0130val 01") == "rival01"
    assert normalize_screen_name("L A B 0 2") == "lab02"
    assert config_normalize is normalize_screen_name
    assert archive_normalize is normalize_screen_name
