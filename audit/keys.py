"""Ed25519 key pairs for signing audit logs, as PEM files (the private one readable by its owner only)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import AuditError
from storage.durable import replace_file

PRIVATE_MODE = 0o600


def generate_keypair(private_path: Path, public_path: Path) -> Ed25519PrivateKey:
    """A new key pair written as PEM (PKCS#8 private, mode 0600; SubjectPublicKeyInfo public); never overwrites a
    private key."""
    private_path, public_path = Path(private_path), Path(public_path)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created 0600 (whatever the umask), so the key is never readable by others, not even for a moment.
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        raise AuditError(f"{private_path}: a private key is already there; not overwriting it") from None
    try:
        os.fchmod(descriptor, PRIVATE_MODE)
        os.write(descriptor, private_pem)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    replace_file(public_path, public_pem)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The unencrypted Ed25519 private key in a PEM file."""
    data = _read(Path(path))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise AuditError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file."""
    data = _read(Path(path))
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise AuditError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: not an Ed25519 public key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"{path}: no such key file") from None
    except OSError as error:
        raise AuditError(f"{path}: cannot read the key file ({error.strerror or type(error).__name__})") from None
