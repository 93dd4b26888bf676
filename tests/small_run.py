"""The overrides of a short end-to-end run: the tiny-test model, two dozen records a site, a few steps."""

SMALL_RUN = [
    "model.preset='tiny-test'",
    "data.records_per_site=24",
    "data.eval_records=16",
    "train.local_steps=3",
    "train.batch_size=4",
]
SMALL_RUN_ARGS = [part for override in SMALL_RUN for part in ("--set", override)]  # as `fedvlm simulate` flags
