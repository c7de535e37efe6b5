"""The Signal dispatcher: connect/disconnect, sender filters, weak references, isolation."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from conveyor.signals.dispatch import Signal


def test_connect_as_decorator_and_send_passes_signal_sender_and_arguments() -> None:
    sig = Signal("demo")
    seen: list[dict[str, Any]] = []

    @sig.connect
    def receiver(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "ok"

    responses = sig.send(sender="s", value=1)
    assert responses == [(receiver, "ok")]
    assert seen == [{"signal": sig, "sender": "s", "value": 1}]
    assert sig.disconnect(receiver) is True
    assert sig.send(sender="s", value=2) == [] and len(seen) == 1
    assert sig.disconnect(receiver) is False


def test_sender_filter_by_identity_by_string_and_by_name() -> None:
    sig = Signal("demo")
    calls: list[str] = []

    class Named:
        name = "tasks.add"

    target = Named()
    sig.connect(lambda **kw: calls.append("object"), sender=target, weak=False)
    sig.connect(lambda **kw: calls.append("string"), sender="tasks.add", weak=False)
    sig.send(sender=Named())  # another object: only the name filter matches
    assert calls == ["string"]
    calls.clear()
    sig.send(sender=target)
    assert sorted(calls) == ["object", "string"]
    calls.clear()
    sig.send(sender="tasks.other")
    assert calls == []


def test_same_receiver_or_dispatch_uid_connects_once() -> None:
    sig = Signal("demo")
    calls: list[int] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(1)

    sig.connect(receiver)
    sig.connect(receiver)
    sig.connect(lambda **kw: calls.append(2), dispatch_uid="uid", weak=False)
    sig.connect(lambda **kw: calls.append(3), dispatch_uid="uid", weak=False)
    sig.send()
    assert sorted(calls) == [1, 3]
    assert sig.disconnect(dispatch_uid="uid")


def test_receivers_are_weak_unless_told_otherwise() -> None:
    sig = Signal("demo")
    calls: list[str] = []

    class Listener:
        def on(self, **kwargs: Any) -> None:
            calls.append("method")

    listener = Listener()
    sig.connect(listener.on)

    def temporary(**kwargs: Any) -> None:
        calls.append("function")

    sig.connect(temporary)
    sig.send()
    assert sorted(calls) == ["function", "method"]
    del listener, temporary
    gc.collect()
    calls.clear()
    sig.send()
    assert calls == [] and sig.receivers == ()
    strong = Signal("strong")
    strong.connect(lambda **kw: calls.append("kept"), weak=False)
    gc.collect()
    strong.send()
    assert calls == ["kept"]


def test_a_receiver_that_raises_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = Signal("demo")
    calls: list[str] = []

    def bad(**kwargs: Any) -> None:
        raise RuntimeError("receiver broke")

    def good(**kwargs: Any) -> None:
        calls.append("good")

    sig.connect(bad)
    sig.connect(good)
    with caplog.at_level(logging.ERROR, "conveyor.signals"):
        responses = sig.send(sender=None)
    assert calls == ["good"]
    assert isinstance(responses[0][1], RuntimeError)
    assert "receiver of signal demo raised" in caplog.text and "receiver broke" in caplog.text


def test_bad_connect_and_disconnect_name_the_problem() -> None:
    sig = Signal("demo")
    with pytest.raises(TypeError, match="demo: a receiver must be callable"):
        sig.connect(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs a receiver or a dispatch_uid"):
        sig.disconnect()
