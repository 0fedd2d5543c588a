"""The AIM client side of the relay benchmark: sign-ons, a closed message loop, sign-offs.

Every client is an ``AimClient`` from ``imtegrity_proxy.client`` in this
process, so the client's own CPU time is part of every latency measured here,
for the direct path and the proxy path alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from imtegrity_proxy.client import AimClient, SignonFailed

T = TypeVar("T")

# Accounts need a password of 4-16 characters, even though the benchmark server
# runs with DISABLE_AUTH=true and ignores it at login.
PASSWORD = "bench-password"  # noqa: S105 (not a secret)


@dataclass
class ExchangeResult:
    """Latencies of the counted messages of one scenario and how long the scenario ran.

    ``delivered`` counts every message received, warm-up included.
    """

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)


class MessageMismatchError(Exception):
    """A client received a different text from the one its peer just sent."""


async def bounded_gather(concurrency: int, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls with at most ``concurrency`` of them in flight; return results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def run(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(run(call) for call in calls))


async def create_bot_accounts(api_url: str, screen_names: Sequence[str]) -> None:
    """Create each account through the management API and flag it as a bot.

    Open OSCAR Server v0.22.0 puts ICBM sends in rate class 3 (``wire/rate_limit.go``):
    when the moving average of the interval between a session's sends falls below
    4 s, it drops further IMs without an error, and below 3 s it closes the
    session. A closed loop reaches that within about 8 messages. Bot accounts are
    exempt (``EvaluateRateLimit`` in ``state/session.go``), so the loop measures
    the relay and not that limit.
    """
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(api_url, timeout=timeout) as http:

        async def create(screen_name: str) -> None:
            account = {"screen_name": screen_name, "password": PASSWORD}
            async with http.post("/user", json=account) as response:
                # 409: the account exists already, which is fine for a rerun on one server.
                if response.status not in (201, 409):
                    body = await response.text()
                    raise RuntimeError(
                        f"POST /user for {screen_name!r} failed: HTTP {response.status} {body}"
                    )
            path = f"/user/{screen_name}/account"
            async with http.patch(path, json={"is_bot": True}) as response:
                if response.status not in (204, 304):
                    body = await response.text()
                    raise RuntimeError(f"PATCH {path} failed: HTTP {response.status} {body}")

        await bounded_gather(16, (lambda name=name: create(name) for name in screen_names))


async def sign_on_all(
    host: str,
    port: int,
    screen_names: Sequence[str],
    source_addresses: Sequence[str],
    concurrency: int,
) -> tuple[list[AimClient], list[str]]:
    """Sign every screen name on at ``host:port``, each from its own local address.

    Returns the clients that signed on and one error line per sign-on that failed.
    """

    async def sign_on(name: str, source: str) -> AimClient | str:
        try:
            return await AimClient.sign_on(host, port, name, PASSWORD, local_addr=source)
        except (SignonFailed, OSError, TimeoutError) as error:
            return f"sign-on of {name!r} from {source} failed: {error or type(error).__name__}"

    calls = [
        lambda name=name, source=source: sign_on(name, source)
        for name, source in zip(screen_names, source_addresses, strict=True)
    ]
    outcomes = await bounded_gather(concurrency, calls)
    clients = [outcome for outcome in outcomes if isinstance(outcome, AimClient)]
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    return clients, errors


async def close_all(clients: Sequence[AimClient], concurrency: int) -> None:
    """Sign every client off (FLAP sign-off frame, then close)."""
    await bounded_gather(concurrency, (client.close for client in clients))


async def wait_until_online(
    list_sessions: Callable[[], Awaitable[dict[str, Any]]],
    screen_names: Iterable[str],
    timeout: float,
) -> None:
    """Poll the server's session list until every screen name in it has signed on.

    The client returns from ``sign_on`` right after it sends client-online, and
    the server routes IMs to a user only once it has processed that SNAC.
    """
    expected = {name.replace(" ", "").lower() for name in screen_names}
    deadline = time.monotonic() + timeout
    while True:
        sessions = await list_sessions()
        entries = sessions.get("sessions") or []
        online = {entry["id"] for entry in entries}
        missing = expected - online
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{len(missing)} of {len(expected)} users not online after {timeout} s, "
                f"for example {sorted(missing)[:3]}"
            )
        await asyncio.sleep(0.1)


async def exchange(
    pairs: Sequence[tuple[AimClient, AimClient]],
    *,
    messages: int,
    warmup: int,
    duration: float,
    timeout: float,
) -> ExchangeResult:
    """Run every pair's closed message loop at once: warm-up first, then the counted part.

    In each pair the two users take turns: one sends an IM, the other receives
    it, then the receiver sends the next one. Each pair has one message in
    flight at a time. A pair stops after ``messages`` counted messages or when
    ``duration`` seconds have passed since the counted part started, whichever
    comes first. Latency is the time from just before ``send_im`` to the return
    of the peer's ``receive_im``.
    """
    result = ExchangeResult()
    warmup_deadline = time.perf_counter() + duration
    await asyncio.gather(
        *(
            _converse(index, pair, warmup, warmup_deadline, timeout, None, result)
            for index, pair in enumerate(pairs)
        )
    )
    if result.errors:
        return result
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(
            _converse(index, pair, messages, deadline, timeout, result.latencies, result)
            for index, pair in enumerate(pairs)
        )
    )
    result.elapsed = time.perf_counter() - started
    return result


async def _converse(
    index: int,
    pair: tuple[AimClient, AimClient],
    count: int,
    deadline: float,
    timeout: float,
    latencies: list[float] | None,
    result: ExchangeResult,
) -> None:
    sender, receiver = pair
    number = 0
    try:
        for number in range(count):
            if time.perf_counter() >= deadline:
                return
            text = f"benchmark message {number} from {sender.screen_name}"
            started = time.perf_counter()
            await sender.send_im(receiver.screen_name, text)
            received = await receiver.receive_im(timeout)
            finished = time.perf_counter()
            if received.text != text:
                raise MessageMismatchError(f"expected {text!r}, received {received.text!r}")
            result.delivered += 1
            if latencies is not None:
                latencies.append(finished - started)
            sender, receiver = receiver, sender
    except (TimeoutError, ConnectionError, MessageMismatchError) as error:
        detail = str(error) or type(error).__name__
        result.errors.append(f"pair {index}, message {number}: {detail}")
