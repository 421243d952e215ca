"""Who may do what, and what a masked caller number still tells a supervisor."""

from __future__ import annotations

import pytest

from ivr_server.admin.masking import mask_number
from ivr_server.admin.roles import allows, parse_roles


@pytest.mark.parametrize(("role", "needed", "allowed"), [
    ("supervisor", "supervisor", True), ("supervisor", "ops", False),
    ("ops", "supervisor", True), ("ops", "ops", True), ("ops", "admin", False),
    ("admin", "ops", True), ("admin", "admin", True),
    (None, "supervisor", False), ("root", "supervisor", False),
])
def test_each_role_may_do_what_the_roles_below_it_may(role, needed, allowed):  # noqa: ANN001
    assert allows(role, needed) is allowed


def test_reveal_roles_from_config_refuse_unknown_names():
    assert parse_roles(" supervisor , admin ") == {"supervisor", "admin"}
    with pytest.raises(ValueError, match="unknown role.*boss"):
        parse_roles("supervisor,boss")


@pytest.mark.parametrize(("number", "shown"), [
    ("+14155550123", "+1 ••••••••23"),
    ("+442071838750", "+44 ••••••••50"),
    ("+390612345678", "+39 ••••••••78"),  # Italy keeps its leading zero
    ("anonymous", "anonymous"),            # withheld: nothing to hide
    ("client:alice", "client:alice"),
    ("1234", "••••"),
    ("", ""),
    (None, ""),
])
def test_masked_numbers_keep_country_and_last_two_digits_only(number, shown):  # noqa: ANN001
    assert mask_number(number) == shown
