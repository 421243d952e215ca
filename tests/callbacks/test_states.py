"""The callback lifecycle: allowed moves pass, anything else names the callback and refuses."""

from __future__ import annotations

import itertools

import pytest

from callbacks.errors import InvalidTransition
from callbacks.states import ACTIVE, FINAL, TRANSITIONS, State, check_transition

# Sorted: the targets are sets, and parallel workers must collect the same tests in one order.
ALLOWED = [(old, new) for old, targets in TRANSITIONS.items()
           for new in sorted(targets, key=list(State).index)]
REFUSED = [(old, new) for old, new in itertools.product(State, State)
           if new not in TRANSITIONS[old]]


def test_every_state_is_either_active_or_final() -> None:
    assert set(State) == ACTIVE | FINAL
    assert not ACTIVE & FINAL
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_allowed_moves_return_the_new_state(old: State, new: State) -> None:
    assert check_transition(old, new) is new
    assert check_transition(str(old), str(new)) is new


@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_other_moves_are_refused(old: State, new: State) -> None:
    with pytest.raises(InvalidTransition, match=f"^callback: {old} -> {new} is not allowed$"):
        check_transition(old, new)


def test_the_message_names_the_callback() -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition("dialing", "requested", what="callback 12")
    assert str(info.value) == "callback 12: dialing -> requested is not allowed"


def test_a_finished_callback_never_comes_back() -> None:
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
        with pytest.raises(InvalidTransition):
            check_transition(final, State.SCHEDULED)


def test_the_expected_lifecycle_moves() -> None:
    assert State.SCHEDULED in TRANSITIONS[State.SCHEDULED]  # rescheduled
    assert State.SCHEDULED in TRANSITIONS[State.DIALING]  # retry after busy / no answer
    assert State.COMPLETED in TRANSITIONS[State.DIALING]  # a machine took the message
    assert State.SCHEDULED in TRANSITIONS[State.CONNECTED]  # hung up before an agent
    assert State.DIALING not in TRANSITIONS[State.REQUESTED]  # a time is chosen first


def test_an_unknown_state_is_refused_by_name() -> None:
    with pytest.raises(InvalidTransition, match="callback 3: unknown state 'ringing'"):
        check_transition("ringing", "dialing", what="callback 3")
    with pytest.raises(InvalidTransition, match="unknown state 'done'"):
        check_transition("dialing", "done")


def test_states_are_plain_strings_for_storage() -> None:
    assert State.DIALING == "dialing"
    assert f"{State.CANCELLED}" == "cancelled"
