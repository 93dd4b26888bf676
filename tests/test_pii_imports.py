"""The PII filter's modules import in two threads at once, as a simulation process imports ServerApp and ClientApp."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter: one thread imports the first module, the other the second a little later.
TWO_THREADS = """
import importlib, sys, threading, time
errors = []
def load(name, wait):
    time.sleep(wait)
    try:
        importlib.import_module(name)
    except Exception as error:
        errors.append(f"{name}: {type(error).__name__}: {error}")
threads = [threading.Thread(target=load, args=(name, wait)) for name, wait in ((sys.argv[1], 0.0), (sys.argv[2], 0.1))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("; ".join(errors))
"""


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("privacy.pii.images", "privacy.pii.text"),  # the ClientApp's entry, then the safety gate's
        ("privacy.pii.text", "privacy.pii.images"),
    ],
)
def test_filter_modules_import_in_two_threads_at_once(first, second):
    result = subprocess.run(
        [sys.executable, "-c", TWO_THREADS, first, second], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
