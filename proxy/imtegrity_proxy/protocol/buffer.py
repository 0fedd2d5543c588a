"""A bounds-checked cursor over bytes, so that short input raises ProtocolError."""

from __future__ import annotations

import struct

from .errors import ProtocolError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class ByteReader:
    """Read big-endian integers and byte strings from a buffer, front to back."""

    __slots__ = ("_context", "_data", "_offset")

    def __init__(self, data: bytes, context: str, offset: int = 0) -> None:
        self._data = data
        self._offset = offset
        self._context = context

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def _need(self, count: int, field: str) -> None:
        if self.remaining < count:
            raise ProtocolError(
                f"{self._context}: {field} is truncated",
                expected=f"{count} bytes",
                actual=f"{self.remaining} bytes",
            )

    def u8(self, field: str) -> int:
        self._need(1, field)
        value = self._data[self._offset]
        self._offset += 1
        return value

    def u16(self, field: str) -> int:
        self._need(2, field)
        (value,) = _U16.unpack_from(self._data, self._offset)
        self._offset += 2
        return int(value)

    def u32(self, field: str) -> int:
        self._need(4, field)
        (value,) = _U32.unpack_from(self._data, self._offset)
        self._offset += 4
        return int(value)

    def take(self, count: int, field: str) -> bytes:
        self._need(count, field)
        value = self._data[self._offset : self._offset + count]
        self._offset += count
        return value

    def u8_string(self, field: str) -> bytes:
        """Read a byte string prefixed with its u8 length."""
        return self.take(self.u8(field + " length"), field)

    def u16_string(self, field: str) -> bytes:
        """Read a byte string prefixed with its u16 length."""
        return self.take(self.u16(field + " length"), field)

    def rest(self) -> bytes:
        value = self._data[self._offset :]
        self._offset = len(self._data)
        return value


def u16(value: int) -> bytes:
    return _U16.pack(value)


def u32(value: int) -> bytes:
    return _U32.pack(value)
