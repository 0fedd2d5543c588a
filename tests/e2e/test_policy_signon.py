"""Sign-on policy through the proxy: unregistered screen names are denied before upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
from imtegrity_proxy.client import AimClient, SignonFailed

from tests.e2e.policy_proxy import running_proxy
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

DENIED_URL = "https://compliance.bank.example/im-access"


def deny_policy(registered: str) -> dict[str, object]:
    return {
        "identities": {registered: "alice.smith@bank.example"},
        "unregistered": "deny",
        "denied_signon": {"code": 0x11, "url": DENIED_URL},
    }


@pytest.mark.parametrize("style", ["bucp", "old-style"])
async def test_unregistered_signon_denied(
    oscar_server: OscarServer, tmp_path: Path, style: str
) -> None:
    alice, mallory = unique_screen_name("Al"), unique_screen_name("Mal")
    async with running_proxy(oscar_server, tmp_path, deny_policy(alice)) as proxy:
        source = oscar_server.source_address()
        with pytest.raises(SignonFailed) as refused:
            await AimClient.sign_on(
                "127.0.0.1", proxy.port, mallory, "password", style=style, local_addr=source
            )
        assert refused.value.code == 0x11
        assert refused.value.url == DENIED_URL

        denied = proxy.records(kind="denied")
        assert len(denied) == 1
        assert denied[0]["local"] == mallory.lower()
        assert denied[0]["action"] == "denied"
        assert denied[0]["client_address"].startswith(f"{source}:")
        assert denied[0]["details"]["style"] == style
        assert denied[0]["details"]["error_code"] == 0x11
        assert proxy.records(kind="signon") == []

        # Nothing of the attempt reached the server.
        log = oscar_server.log_path.read_text(errors="replace").lower()
        assert mallory.lower() not in log
        metrics = proxy.server.metrics.render_prometheus().decode()
        assert 'imtegrity_signons_total{result="denied"} 1.0' in metrics


@pytest.mark.parametrize("style", ["bucp", "old-style"])
async def test_registered_signon_allowed(
    oscar_server: OscarServer, tmp_path: Path, style: str
) -> None:
    alice = unique_screen_name("Al")
    async with running_proxy(oscar_server, tmp_path, deny_policy(alice)) as proxy:
        # A formatted variant of the registered name is the same account.
        formatted = alice.upper()[:2] + " " + alice[2:]
        client = await proxy.sign_on(formatted, style=style)
        signons = proxy.records(kind="signon")
        assert len(signons) == 1
        assert signons[0]["identity"] == "alice.smith@bank.example"
        assert signons[0]["local"] == alice.lower()
        await client.close()
        await oscar_server.async_wait_for_session(alice, online=False)
        signoffs = await proxy.wait_for_records(1, kind="signoff")
        assert [record["identity"] for record in signoffs] == ["alice.smith@bank.example"]
