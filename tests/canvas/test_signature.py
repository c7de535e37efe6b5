"""Signatures as data: building, partial application, options, the JSON round trip, and
the workflows refused when they are built."""

from __future__ import annotations

import json

import pytest

from conveyor import Conveyor, Signature, chain, chord, group, signature
from conveyor.app.signature import Signature as OldPathSignature
from conveyor.canvas import InvalidWorkflow
from tests.canvas.conftest import Tasks


def test_s_si_and_signature_build_the_same_call(tasks: Tasks) -> None:
    add = tasks.add
    assert add.s(2, 2) == add.signature((2, 2)) == signature(add.name, args=(2, 2))
    assert add.si(2, 2).immutable and not add.s(2, 2).immutable
    sig = add.signature((1,), {"y": 2}, immutable=True, queue="q", countdown=3)
    assert (sig.args, sig.kwargs, sig.options) == ((1,), {"y": 2}, {"queue": "q", "countdown": 3})
    assert OldPathSignature is Signature  # the old import path still works


def test_partial_args_go_in_front_and_kwargs_merge(tasks: Tasks) -> None:
    partial = tasks.echo.s(2, a=1)
    assert partial.clone((1,), {"b": 2}).args == (1, 2)
    assert partial.clone((1,), {"b": 2}).kwargs == {"a": 1, "b": 2}
    assert partial(0, b=3) == [[0, 2], {"a": 1, "b": 3}]  # called here, partially applied
    frozen = tasks.echo.si(2)
    assert frozen.clone((1,)).args == (2,), "an immutable signature ignores partial args"
    assert partial.args == (2,), "clone leaves the original alone"


def test_set_and_clone_options(tasks: Tasks) -> None:
    sig = tasks.add.s(1, 2).set(queue="a").set(countdown=5)
    assert sig.options == {"queue": "a", "countdown": 5}
    copy = sig.clone(priority=3)
    assert copy.options == {"queue": "a", "countdown": 5, "priority": 3}
    assert sig.options == {"queue": "a", "countdown": 5}


def test_unknown_option_is_refused_naming_it(tasks: Tasks) -> None:
    with pytest.raises(InvalidWorkflow, match="unknown option 'colour'"):
        tasks.add.s(1, 2).set(colour="blue")


def test_json_round_trip_of_every_shape(app: Conveyor, tasks: Tasks) -> None:
    add, tsum = tasks.add, tasks.tsum
    workflows = [
        add.s(1, 2).set(queue="q"),
        add.si(1, 2),
        add.s(1) | add.s(2) | add.s(3),
        group(add.s(1, 1), add.s(2, 2)),
        chord([add.s(1, 1), add.s(2, 2)], tsum.s()),
        add.s(1, 1) | group(add.s(1), add.s(2)) | tsum.s(),
    ]
    workflows[0].link(tsum.s())
    workflows[0].link_error(add.si(0, 0))
    for workflow in workflows:
        text = json.dumps(dict(workflow))
        back = signature(json.loads(text), app=app)
        assert type(back) is type(workflow)
        assert dict(back) == dict(workflow)
        assert back == workflow


def test_bad_shapes_are_refused_when_built_with_the_reason(app: Conveyor, tasks: Tasks) -> None:
    with pytest.raises(InvalidWorkflow, match="needs 'task'"):
        signature({"args": [1]}, app=app)
    with pytest.raises(InvalidWorkflow, match="unknown signature type 'loop'"):
        signature({"task": "x", "subtask_type": "loop"}, app=app)
    with pytest.raises(InvalidWorkflow, match="chain step 1: expected a signature"):
        chain(tasks.add.s(1, 1), 42)
    with pytest.raises(InvalidWorkflow, match="group member 0"):
        group([object()])
    with pytest.raises(InvalidWorkflow, match="args of 'x' must be a list"):
        Signature("x", args="12")  # type: ignore[arg-type]
    with pytest.raises(InvalidWorkflow, match="at least one task"):
        chain()


def test_a_cycle_is_refused_when_built(tasks: Tasks) -> None:
    a, b = tasks.add.s(1, 1), tasks.add.s(2)
    a.link(b)
    with pytest.raises(InvalidWorkflow, match="cycle"):
        b.link(a)
    with pytest.raises(InvalidWorkflow, match="cycle"):
        a.link(a)
    c = tasks.add.s(3)
    b.link_error(c)
    with pytest.raises(InvalidWorkflow, match="cycle"):
        c.link(a)


def test_or_builds_chains_and_flattens(tasks: Tasks) -> None:
    add = tasks.add
    c = add.s(1, 1) | add.s(2)
    assert isinstance(c, chain) and len(c.tasks) == 2
    longer = c | (add.s(3) | add.s(4))
    assert [t.args for t in longer.tasks] == [(1, 1), (2,), (3,), (4,)]
    assert chain(add.s(1, 1), add.s(2)) == c


def test_celery_call_options_are_accepted(tasks: Tasks) -> None:
    sig = tasks.add.s(1, 2).set(time_limit=5, soft_time_limit=3, routing_key="math")
    assert sig.options == {"time_limit": 5, "soft_time_limit": 3, "routing_key": "math"}
