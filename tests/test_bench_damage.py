"""bench.damage's counting on hand-made records, rows and generations (no model)."""

from __future__ import annotations

import re

from bench.damage import made_up_secrets, sex_gap
from simulations.canaries import Canary


def test_sex_gap_is_the_accuracy_difference_between_the_sexes():
    row = {"utility": {"groups": {"sex": {"F": {"correct": 6, "total": 10}, "M": {"correct": 9, "total": 10}}}}}
    assert abs(sex_gap(row) - 0.3) < 1e-9
    assert sex_gap({"utility": {"groups": {}}}) is None


def test_made_up_secrets_have_the_canarys_form_and_are_the_same_every_time():
    canary = Canary("the door code is", "4821-7730")
    secrets = made_up_secrets(canary, 15)
    assert len(set(secrets)) == 15 and canary.secret not in secrets
    assert all(re.fullmatch(r"[1-9]\d{3}-[1-9]\d{3}", secret) for secret in secrets)
    assert made_up_secrets(canary, 15) == secrets
    assert made_up_secrets(Canary("the door code is", "1111-2222"), 15) != secrets
