"""Names in the messages between the ServerApp and the ClientApps that both sides must agree on."""

SITE_RECORD = "site"  # a train reply's ConfigRecord: the site's name and status
TRAINED = "trained"
BUDGET_EXHAUSTED = "budget-exhausted"  # the site declined: this round would pass its privacy budget
UNIT_WEIGHT_KEY = "unit-weight"  # a reply metric of 1: under central DP every site weighs the same in the average
