"""Smoke tests: the Open OSCAR Server fixture runs the real server."""

from __future__ import annotations

import pytest

from tests.fixtures.oscar import OscarApiError, OscarServer, unique_screen_name
from tests.fixtures.oscar_signon import SignonError, sign_on

pytestmark = pytest.mark.e2e


async def test_screen_name_signs_on_and_is_listed(oscar_server: OscarServer) -> None:
    screen_name = unique_screen_name("Smoke")
    assert oscar_server.online_screen_names().isdisjoint({screen_name})

    client = await sign_on(
        oscar_server.host,
        oscar_server.port,
        screen_name,
        "ignored",
        local_addr=oscar_server.source_address(),
    )
    async with client:
        # One listener serves login and BOS: the server points back at itself.
        assert (client.ticket.bos_host, client.ticket.bos_port) == (
            oscar_server.host,
            oscar_server.port,
        )
        entry = await oscar_server.async_wait_for_session(screen_name)
        assert entry is not None
        assert entry["screen_name"] == screen_name
        assert entry["instances"][0]["remote_addr"] == client.local_address[0]

        # The management API delivers an instant message to the live client.
        await oscar_server.async_send_instant_message("ItgSender", screen_name, "hello peer")
        message = await client.receive_instant_message()
        assert (message.sender, message.text) == ("ItgSender", "hello peer")

    await oscar_server.async_wait_for_session(screen_name, online=False)


async def test_create_user_with_auth_enabled(oscar_server_factory) -> None:
    server = oscar_server_factory(disable_auth=False)
    screen_name = unique_screen_name("Auth")

    # With auth on, an unknown screen name is refused...
    with pytest.raises(SignonError) as refused:
        await sign_on(
            server.host, server.port, screen_name, "secret12",
            local_addr=server.source_address(),
        )  # fmt: skip
    assert refused.value.code == 0x01

    server.create_user(screen_name, "secret12")
    assert screen_name in {user["screen_name"] for user in server.users()}
    with pytest.raises(OscarApiError) as duplicate:
        server.create_user(screen_name, "secret12")
    assert duplicate.value.status == 409

    # ...a wrong password is refused, and the right one signs on.
    with pytest.raises(SignonError) as wrong:
        await sign_on(
            server.host, server.port, screen_name, "wrong-pw",
            local_addr=server.source_address(),
        )  # fmt: skip
    assert wrong.value.code == 0x05

    async with await sign_on(
        server.host, server.port, screen_name, "secret12", local_addr=server.source_address()
    ):
        assert await server.async_wait_for_session(screen_name) is not None
