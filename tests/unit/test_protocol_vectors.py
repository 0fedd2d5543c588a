"""Run every message vector both ways: parse to the value, encode to the bytes."""

from __future__ import annotations

import pytest

from tests.unit.protocol_vectors import MESSAGE_VECTORS, MessageVector

ENCODED = [vector for vector in MESSAGE_VECTORS if vector.encode is not None]
SERIALISED = [vector for vector in MESSAGE_VECTORS if vector.serialise is not None]


def _name(vector: MessageVector) -> str:
    return vector.name


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=_name)
def test_vector_parse(vector: MessageVector) -> None:
    assert vector.parse(vector.raw) == vector.value


@pytest.mark.parametrize("vector", ENCODED, ids=_name)
def test_vector_encode(vector: MessageVector) -> None:
    assert vector.encode is not None
    assert vector.encode() == vector.raw


@pytest.mark.parametrize("vector", SERIALISED, ids=_name)
def test_vector_reserialise(vector: MessageVector) -> None:
    assert vector.serialise is not None
    assert vector.serialise(vector.parse(vector.raw)) == vector.raw
