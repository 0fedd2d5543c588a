"""Wire values as enums, one per namespace.

Use ``coerce`` to convert: a code the enum does not list stays a plain int, so
the relay passes it on unchanged instead of failing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

E = TypeVar("E", bound=IntEnum)


def coerce(enum: type[E], value: int) -> E | int:
    """Return the enum member for ``value``, or ``value`` itself when unknown."""
    try:
        return enum(value)
    except ValueError:
        return value


class Channel(IntEnum):
    """FLAP channel."""

    SIGNON = 0x01
    DATA = 0x02
    ERROR = 0x03
    SIGNOFF = 0x04
    KEEPALIVE = 0x05


class Family(IntEnum):
    """SNAC food group."""

    OSERVICE = 0x0001
    LOCATE = 0x0002
    BUDDY = 0x0003
    ICBM = 0x0004
    ADVERT = 0x0005
    INVITE = 0x0006
    ADMIN = 0x0007
    POPUP = 0x0008
    PERMIT_DENY = 0x0009
    USER_LOOKUP = 0x000A
    STATS = 0x000B
    TRANSLATE = 0x000C
    CHAT_NAV = 0x000D
    CHAT = 0x000E
    ODIR = 0x000F
    BART = 0x0010
    FEEDBAG = 0x0013
    ICQ = 0x0015
    BUCP = 0x0017
    ALERT = 0x0018
    PLUGIN = 0x0022
    UNNAMED_FG_24 = 0x0024
    MDIR = 0x0025


class OServiceSubtype(IntEnum):
    """Subtypes of family 0x0001 (generic service controls)."""

    ERROR = 0x0001
    CLIENT_ONLINE = 0x0002
    HOST_ONLINE = 0x0003
    SERVICE_REQUEST = 0x0004
    SERVICE_RESPONSE = 0x0005
    RATE_PARAMS_QUERY = 0x0006
    RATE_PARAMS_REPLY = 0x0007
    PAUSE_REQ = 0x000B
    PAUSE_ACK = 0x000C
    RESUME = 0x000D
    USER_INFO_QUERY = 0x000E
    USER_INFO_UPDATE = 0x000F
    EVIL_NOTIFICATION = 0x0010
    MIGRATE_GROUPS = 0x0012
    MOTD = 0x0013
    HOST_VERSIONS = 0x0018


class IcbmSubtype(IntEnum):
    """Subtypes of family 0x0004 (ICBM: instant messages)."""

    ERROR = 0x0001
    ADD_PARAMETERS = 0x0002
    PARAMETER_QUERY = 0x0004
    PARAMETER_REPLY = 0x0005
    CHANNEL_MSG_TO_HOST = 0x0006
    CHANNEL_MSG_TO_CLIENT = 0x0007
    EVIL_REQUEST = 0x0008
    EVIL_REPLY = 0x0009
    MISSED_CALLS = 0x000A
    CLIENT_ERR = 0x000B
    HOST_ACK = 0x000C
    OFFLINE_RETRIEVE = 0x0010
    CLIENT_EVENT = 0x0014
    OFFLINE_RETRIEVE_REPLY = 0x0017


class ChatSubtype(IntEnum):
    """Subtypes of family 0x000E (chat rooms)."""

    ERROR = 0x0001
    ROOM_INFO_UPDATE = 0x0002
    USERS_JOINED = 0x0003
    USERS_LEFT = 0x0004
    CHANNEL_MSG_TO_HOST = 0x0005
    CHANNEL_MSG_TO_CLIENT = 0x0006


class BucpSubtype(IntEnum):
    """Subtypes of family 0x0017 (BUCP sign-on)."""

    ERROR = 0x0001
    LOGIN_REQUEST = 0x0002
    LOGIN_RESPONSE = 0x0003
    REGISTER_REQUEST = 0x0004
    CHALLENGE_REQUEST = 0x0006
    CHALLENGE_RESPONSE = 0x0007


class SignonTlv(IntEnum):
    """TLV types of sign-on requests and replies (BUCP and channel 1/4)."""

    SCREEN_NAME = 0x0001
    ROASTED_PASSWORD = 0x0002
    CLIENT_ID_STRING = 0x0003
    ERROR_URL = 0x0004
    BOS_ADDRESS = 0x0005
    COOKIE = 0x0006
    ERROR_CODE = 0x0008
    DISCONNECT_REASON = 0x0009
    EMAIL = 0x0011
    PASSWORD_HASH = 0x0025
    STRONG_HASH = 0x004C
    SSL_STATE = 0x008E


class RedirectTlv(IntEnum):
    """TLV types of a service redirect (0x0001/0x0005) and migration (0x0001/0x0012)."""

    ROOM_INFO = 0x0001
    ADDRESS = 0x0005
    COOKIE = 0x0006
    FAMILY = 0x000D
    SSL_CERT_NAME = 0x008D
    SSL_STATE = 0x008E


class IcbmChannel(IntEnum):
    """ICBM channel: 1 plain text, 2 rendezvous, 4 ICQ-style data."""

    IM = 0x0001
    RENDEZVOUS = 0x0002
    DATA = 0x0004


class IcbmTlv(IntEnum):
    """TLV types after the screen name in ICBM send and receive."""

    MESSAGE = 0x0002
    REQUEST_HOST_ACK = 0x0003
    AUTO_RESPONSE = 0x0004
    RENDEZVOUS = 0x0005
    STORE = 0x0006
    ICON_INFO = 0x0008
    REQUEST_ICON = 0x0009
    WANT_EVENTS = 0x000B
    OFFLINE_TIME = 0x0016


class Charset(IntEnum):
    """Charset of a text fragment in ICBM TLV 0x02."""

    ASCII = 0x0000
    UCS2 = 0x0002
    LATIN1 = 0x0003


class RendezvousType(IntEnum):
    """First u16 of ICBM channel-2 TLV 0x05."""

    PROPOSE = 0x0000
    CANCEL = 0x0001
    ACCEPT = 0x0002


class TypingEvent(IntEnum):
    """Event of a typing notification (0x0004/0x0014)."""

    CLEARED = 0x0000
    TYPED = 0x0001
    TYPING = 0x0002


class ErrorCode(IntEnum):
    """Codes of an error SNAC (family, 0x0001)."""

    INVALID_SNAC = 0x0001
    RATE_TO_HOST = 0x0002
    RATE_TO_CLIENT = 0x0003
    NOT_LOGGED_ON = 0x0004
    SERVICE_UNAVAILABLE = 0x0005
    SERVICE_NOT_DEFINED = 0x0006
    OBSOLETE_SNAC = 0x0007
    NOT_SUPPORTED_BY_HOST = 0x0008
    NOT_SUPPORTED_BY_CLIENT = 0x0009
    REFUSED_BY_CLIENT = 0x000A
    REPLY_TOO_BIG = 0x000B
    RESPONSES_LOST = 0x000C
    REQUEST_DENIED = 0x000D
    BUSTED_SNAC_PAYLOAD = 0x000E
    INSUFFICIENT_RIGHTS = 0x000F
    IN_LOCAL_PERMIT_DENY = 0x0010
    TOO_EVIL_SENDER = 0x0011
    TOO_EVIL_RECEIVER = 0x0012
    USER_TEMP_UNAVAIL = 0x0013
    NO_MATCH = 0x0014
    LIST_OVERFLOW = 0x0015
    REQUEST_AMBIGUOUS = 0x0016
    QUEUE_FULL = 0x0017
    NOT_WHILE_ON_AOL = 0x0018


class SignonErrorCode(IntEnum):
    """Codes of sign-on reply TLV 0x08."""

    INVALID_SCREEN_NAME = 0x0001
    SERVICE_UNAVAILABLE = 0x0002
    WRONG_PASSWORD = 0x0005
    INVALID_ACCOUNT = 0x0007
    DELETED_ACCOUNT = 0x0008
    SUSPENDED = 0x0011
    SERVICE_TEMPORARILY_UNAVAILABLE = 0x0014
    CONNECTING_TOO_OFTEN = 0x0018
    CLIENT_TOO_OLD = 0x001C
    RATE_LIMITED = 0x001D
