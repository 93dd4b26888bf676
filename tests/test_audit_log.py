"""The audit log: chained, signed, continued on reopening, and every kind of tampering caught and located."""

from __future__ import annotations

import hashlib
import json
import random
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.errors import AuditError
from audit.hashing import file_hash, folder_hash
from audit.keys import generate_keypair, load_private_key, load_public_key
from audit.log import LOG_NAME, AuditLog
from audit.verify import verify_files, verify_log, verify_run_end

TRIALS = 200
GENESIS_BY_HAND = "0" * 64


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_log(path: Path, key: Ed25519PrivateKey | None = None, rounds: int = 3) -> AuditLog:
    log = AuditLog(path, signing_key=key)
    log.append("run-start", {"run_id": "run-1", "config_sha256": "ab" * 32, "sites": 3})
    for number in range(1, rounds + 1):
        log.append("round", {"round": number, "accepted": True, "epsilon": 0.25 * number, "clients": [1, 2]})
    log.append("run-end", {"rounds": rounds, "delta": 1e-05})
    return log


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / "audit.key", tmp_path / "keys" / "audit.pub"
    generate_keypair(private, public)
    return private, public


def test_an_untouched_chain_verifies_and_each_prev_hashes_the_line_before(tmp_path: Path) -> None:
    path = tmp_path / LOG_NAME
    log = _write_log(path)
    entries = verify_log(path, expected_run_id="run-1")
    lines = _lines(path)
    assert [entry["seq"] for entry in entries] == [0, 1, 2, 3, 4]
    assert [entry["kind"] for entry in entries] == ["run-start", "round", "round", "round", "run-end"]
    assert entries[0]["prev"] == GENESIS_BY_HAND
    assert [entry["prev"] for entry in entries[1:]] == [_sha256(line) for line in lines[:-1]]
    assert log.head == _sha256(lines[-1])
    for line in lines:  # canonical JSON, by the stdlib directly
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode()
    assert entries[3]["payload"] == {"round": 3, "accepted": True, "epsilon": 0.75, "clients": [1, 2]}


def test_a_signed_log_verifies_with_its_key_only(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path, load_private_key(keys[0]))
    assert len(verify_log(path, public_key=load_public_key(keys[1]))) == 5
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(AuditError, match=r"line 1 \(seq 0\): invalid signature"):
        verify_log(path, public_key=other)


def test_a_log_rechained_without_signatures_fails_when_a_key_is_given(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path, load_private_key(keys[0]))
    # A forger drops the signatures and rebuilds a consistent chain.
    rebuilt, prev = [], GENESIS_BY_HAND
    for line in _lines(path):
        entry = json.loads(line)
        del entry["signature"]
        entry["prev"] = prev
        text = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        rebuilt.append(text)
        prev = _sha256(text)
    _write_lines(path, rebuilt)
    assert len(verify_log(path)) == 5
    with pytest.raises(AuditError, match=r"line 1 \(seq 0\): missing signature"):
        verify_log(path, public_key=load_public_key(keys[1]))


def test_equivalent_but_non_canonical_last_lines_fail_in_a_signed_log(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path, load_private_key(keys[0]))
    public_key = load_public_key(keys[1])
    original = _lines(path)
    last = json.loads(original[-1])
    spelled_otherwise = [
        original[-1].replace(b"1e-05", b"1E-05"),  # the same float
        json.dumps(last, sort_keys=True).encode(),  # spaces after separators
        json.dumps(dict(reversed(last.items())), separators=(",", ":")).encode(),  # keys out of order
    ]
    for line in spelled_otherwise:
        assert json.loads(line) == last
        _write_lines(path, [*original[:-1], line])
        with pytest.raises(AuditError, match=r"line 5 \(seq 4\): not in canonical JSON form"):
            verify_log(path, public_key=public_key)
    # The signature's last base64 digit has unused low bits: a second spelling of the same signature bytes.
    signature = last["signature"]
    assert signature.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other_digit = alphabet[alphabet.index(signature[-3]) ^ 1]
    respelled = original[-1].replace(signature.encode(), (signature[:-3] + other_digit + "==").encode())
    assert respelled != original[-1]
    _write_lines(path, [*original[:-1], respelled])
    with pytest.raises(AuditError, match=r"line 5 \(seq 4\): invalid signature"):
        verify_log(path, public_key=public_key)


def test_reopening_continues_seq_and_prev(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    key = load_private_key(keys[0])
    _write_log(path, key, rounds=1)
    before = path.read_bytes()
    entry = AuditLog(path, signing_key=key).append("resume", {"from_round": 1})
    assert path.read_bytes().startswith(before)
    assert entry["seq"] == 3
    assert entry["prev"] == _sha256(before.split(b"\n")[-2])
    AuditLog(path, signing_key=key).append("round", {"round": 2})
    entries = verify_log(path, public_key=load_public_key(keys[1]))
    assert [entry["seq"] for entry in entries] == [0, 1, 2, 3, 4]
    assert [entry["kind"] for entry in entries][-2:] == ["resume", "round"]


def test_reopening_refuses_a_damaged_log_another_key_or_no_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    key = load_private_key(keys[0])
    _write_log(path, key)
    with pytest.raises(AuditError, match="line 1 .*invalid signature"):
        AuditLog(path, signing_key=Ed25519PrivateKey.generate())
    with pytest.raises(AuditError, match="signing key"):
        AuditLog(path)
    lines = _lines(path)
    _write_lines(path, [lines[0], lines[2], *lines[3:]])
    before = path.read_bytes()
    with pytest.raises(AuditError, match=r"line 2 \(seq 2\)"):
        AuditLog(path, signing_key=key)
    assert path.read_bytes() == before


def test_appending_refuses_unknown_kinds_and_non_json_payloads(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / LOG_NAME)
    with pytest.raises(ValueError, match="run-start"):
        log.append("round", {"round": 1})
    with pytest.raises(ValueError, match="run_id"):
        log.append("run-start", {})
    log.append("run-start", {"run_id": "run-1"})
    with pytest.raises(ValueError, match="unknown audit entry kind"):
        log.append("party", {})
    with pytest.raises(ValueError, match="run-start"):
        log.append("run-start", {"run_id": "run-2"})
    for payload in ({"clients": (1, 2)}, {1: "a"}, {"loss": float("nan")}, {"raw": b"bytes"}, {"files": {"/etc": ""}}):
        with pytest.raises(ValueError):
            log.append("round", payload)
    assert len(_lines(tmp_path / LOG_NAME)) == 1


def _flip(data: bytes, rng: random.Random, end: int) -> bytes:
    position = rng.randrange(end)
    flipped = bytearray(data)
    flipped[position] ^= rng.randrange(1, 256)
    return bytes(flipped)


def test_every_byte_flip_in_a_signed_log_is_detected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path, load_private_key(keys[0]))
    public_key = load_public_key(keys[1])
    original = path.read_bytes()
    rng = random.Random(16)
    tampered = tmp_path / "tampered.jsonl"
    detected = 0
    for _ in range(TRIALS):
        tampered.write_bytes(_flip(original, rng, len(original)))
        try:
            verify_log(tampered, public_key=public_key)
        except AuditError:
            detected += 1
    assert detected == TRIALS


def test_every_byte_flip_before_the_last_line_of_an_unsigned_log_is_detected(tmp_path: Path) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path)
    original = path.read_bytes()
    # Without a signature nothing pins the last line; every line before it is pinned by the next line's prev.
    pinned = len(original) - len(_lines(path)[-1]) - 1
    rng = random.Random(17)
    tampered = tmp_path / "tampered.jsonl"
    detected = 0
    for _ in range(TRIALS):
        tampered.write_bytes(_flip(original, rng, pinned))
        try:
            verify_log(tampered)
        except AuditError:
            detected += 1
    assert detected == TRIALS


def _run_folder(root: Path) -> list[Path]:
    (root / "adapter").mkdir(parents=True)
    (root / "adapter" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (root / "adapter" / "config.json").write_text('{"r": 8}', encoding="utf-8")
    (root / "metrics.jsonl").write_text('{"round": 1, "loss": 0.5}\n', encoding="utf-8")
    return [root / "adapter" / "weights.bin", root / "adapter" / "config.json", root / "metrics.jsonl"]


def test_every_byte_flip_in_a_hashed_file_or_folder_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "run"
    files = _run_folder(root)
    log = AuditLog(root / LOG_NAME)
    log.append("run-start", {"run_id": "run-1"})
    named = {"adapter": folder_hash(root / "adapter"), "metrics.jsonl": file_hash(root / "metrics.jsonl")}
    log.append("run-end", {"files": named})
    entries = verify_log(root / LOG_NAME)
    assert verify_files(entries, root) == named
    rng = random.Random(18)
    detected = 0
    for _ in range(TRIALS):
        target = rng.choice(files)
        original = target.read_bytes()
        target.write_bytes(_flip(original, rng, len(original)))
        try:
            verify_files(entries, root)
        except AuditError as error:
            detected += str(root / ("adapter" if target.parent.name == "adapter" else "metrics.jsonl")) in str(error)
        target.write_bytes(original)
    assert detected == TRIALS
    assert verify_files(entries, root) == named


def test_file_and_folder_hashes(tmp_path: Path) -> None:
    files = _run_folder(tmp_path)
    assert file_hash(files[2]) == _sha256(files[2].read_bytes())
    by_hand = hashlib.sha256()
    for relative in ("config.json", "weights.bin"):
        content = (tmp_path / "adapter" / relative).read_bytes()
        by_hand.update(relative.encode() + b"\0" + _sha256(content).encode() + b"\n")
    before = folder_hash(tmp_path / "adapter")
    assert before == by_hand.hexdigest()
    (tmp_path / "adapter" / "config.json").rename(tmp_path / "adapter" / "config2.json")
    assert folder_hash(tmp_path / "adapter") != before
    (tmp_path / "adapter" / "config2.json").rename(tmp_path / "adapter" / "config.json")
    (tmp_path / "adapter" / "extra").write_bytes(b"")
    assert folder_hash(tmp_path / "adapter") != before


def test_only_the_latest_hash_of_a_path_counts_and_pruned_paths_may_be_gone(tmp_path: Path) -> None:
    root = tmp_path / "run"
    metrics = root / "metrics.jsonl"
    log = AuditLog(root / LOG_NAME)
    log.append("run-start", {"run_id": "run-1"})
    for number in (1, 2):
        checkpoint = root / "checkpoints" / f"round-{number:04d}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "state.json").write_text(json.dumps({"round": number}), encoding="utf-8")
        metrics.write_text(f'{{"round": {number}}}\n', encoding="utf-8")
        names = {f"checkpoints/round-{number:04d}": folder_hash(checkpoint), "metrics.jsonl": file_hash(metrics)}
        log.append("round", {"round": number, "files": names})
    entries = verify_log(root / LOG_NAME)
    # metrics.jsonl was replaced in round 2; round 1's hash of it no longer counts.
    assert set(verify_files(entries, root)) == {"checkpoints/round-0001", "checkpoints/round-0002", "metrics.jsonl"}
    # round-0001 still there but changed: it must still match the hash last named for it.
    (root / "checkpoints" / "round-0001" / "state.json").write_text("{}", encoding="utf-8")
    with pytest.raises(AuditError, match="round-0001: SHA-256 differs from the hash named by entry 1"):
        verify_files(entries, root)
    # Pruned by round 2 (which no longer names it): it may be gone.
    for file in (root / "checkpoints" / "round-0001").iterdir():
        file.unlink()
    (root / "checkpoints" / "round-0001").rmdir()
    assert set(verify_files(entries, root)) == {"checkpoints/round-0002", "metrics.jsonl"}
    # Named by the last entry with files: it must be there.
    metrics.unlink()
    with pytest.raises(AuditError, match=r"metrics.jsonl: missing \(named by entry 2"):
        verify_files(entries, root)


def _rewrite(path: Path, number: int, change: dict) -> None:
    """Change fields of line `number` (1-based), keeping it canonical; the chain after it is left as it was."""
    lines = _lines(path)
    entry = json.loads(lines[number - 1])
    entry.update(change)
    lines[number - 1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    _write_lines(path, lines)


def _delete_middle(path: Path) -> None:
    lines = _lines(path)
    _write_lines(path, [*lines[:2], *lines[3:]])


def _swap(path: Path) -> None:
    lines = _lines(path)
    _write_lines(path, [lines[0], lines[2], lines[1], *lines[3:]])


def _truncate_last(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _garble(path: Path) -> None:
    lines = _lines(path)
    lines[3] = lines[3][:-1]
    _write_lines(path, lines)


def _first_not_run_start(path: Path) -> None:
    entry = {"seq": 0, "time": "2026-01-01T00:00:00+00:00", "kind": "round", "payload": {}, "prev": GENESIS_BY_HAND}
    path.write_text(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n", encoding="ascii")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_delete_middle, r"line 3 \(seq 3\): seq 3 out of order \(expected 2\)"),
        (_swap, r"line 2 \(seq 2\): seq 2 out of order \(expected 1\)"),
        (_truncate_last, r"line 5: truncated"),
        (_garble, r"line 4: not valid JSON"),
        (lambda path: _rewrite(path, 3, {"kind": "party"}), r"line 3 \(seq 2\): unknown kind 'party'"),
        (lambda path: _rewrite(path, 2, {"payload": {"round": 9}}), r"line 3 \(seq 2\): prev does not match"),
        (lambda path: _rewrite(path, 1, {"prev": "1" * 64}), r"line 1 \(seq 0\): prev does not match the genesis"),
        (lambda path: _rewrite(path, 5, {"time": "yesterday"}), r"line 5 \(seq 4\): time 'yesterday'"),
        (lambda path: path.write_bytes(b""), r"empty audit log"),
        (lambda path: path.unlink(), r"no audit log"),
        (_first_not_run_start, r"line 1 \(seq 0\): the first entry is 'round', not 'run-start'"),
    ],
)
def test_each_damage_fails_naming_the_line(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path)
    damage(path)
    with pytest.raises(AuditError, match=message) as raised:
        verify_log(path)
    assert "\n" not in str(raised.value)


def test_a_run_start_of_another_run_fails(tmp_path: Path) -> None:
    path = tmp_path / LOG_NAME
    _write_log(path)
    with pytest.raises(AuditError, match=r"line 1 \(seq 0\): run-start run_id 'run-1' is not the expected 'run-2'"):
        verify_log(path, expected_run_id="run-2")


def test_key_files(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    message = b"round 3"
    load_public_key(public).verify(load_private_key(private).sign(message), message)
    with pytest.raises(AuditError, match="already"):
        generate_keypair(private, tmp_path / "other.pub")
    with pytest.raises(AuditError, match=f"{tmp_path / 'absent.key'}: no such key file"):
        load_private_key(tmp_path / "absent.key")
    with pytest.raises(AuditError, match=f"{public}: not an unencrypted PEM private key"):
        load_private_key(public)
    with pytest.raises(AuditError, match=f"{private}: not a PEM public key"):
        load_public_key(private)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key", encoding="utf-8")
    with pytest.raises(AuditError, match=f"{garbage}: not an unencrypted PEM private key"):
        load_private_key(garbage)


def _closed_run_log(path: Path) -> None:
    log = AuditLog(path)
    log.append("run-start", {"run_id": "run-1"})
    for number in range(3):
        log.append("round", {"row": {"round": number, "adapter_hash": f"{number:064x}"}})
    log.append("run-end", {"last_round": 2, "adapter_hash": f"{2:064x}"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'"last_round":2', b'"last_round":3', "run-end names round 3"),
        (b'"last_round":2', b'"lase_round":2', "run-end holds"),
        (b'"adapter_hash":"0000', b'"adapter_hash":"1000', "adapter_hash is not the last round's"),
        (b'"time":"20', b'"time":"19', "dated before"),
    ],
)
def test_an_unsigned_run_end_that_contradicts_its_rounds_fails(tmp_path: Path, old: bytes, new: bytes, message):
    path = tmp_path / "audit.jsonl"
    _closed_run_log(path)
    verify_run_end(verify_log(path))
    lines = _lines(path)
    assert old in lines[-1]
    lines[-1] = lines[-1].replace(old, new, 1)
    _write_lines(path, lines)
    with pytest.raises(AuditError, match=message):
        verify_run_end(verify_log(path))
