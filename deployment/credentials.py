"""TLS certificates and SuperNode keys for a federation, made with `cryptography`.

A CA signs the SuperLink's server certificate (subject-alternative names for the SuperLink's addresses: Flower's own
SuperExec connects back over TLS to 127.0.0.1). Each SuperNode gets a P-384 key pair in OpenSSH format, the
format `flwr supernode register` and `flower-supernode --auth-supernode-private-key` take.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate every party trusts, and the SuperLink's certificate and key."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's key pair: the private key stays at the site, the public key is registered with the SuperLink."""

    private: Path
    public: Path


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _subject_alternative_names(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def write_tls_files(
    folder: Path,
    hosts: tuple[str, ...] = LOOPBACK_NAMES,
    valid_from: datetime.datetime | None = None,
    days: int = 30,
) -> TlsFiles:
    """A new CA and a server certificate it signs for hosts, valid for days from valid_from (default now)."""
    start = valid_from or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("fedvlm federation CA"))
        .issuer_name(_name("fedvlm federation CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA384())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_certificate.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(_subject_alternative_names(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    files = TlsFiles(folder / "ca.crt", folder / "server.pem", folder / "server.key")
    files.ca_certificate.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    files.server_certificate.write_bytes(server_certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(
        files.server_key,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return files


def write_node_key(folder: Path, name: str) -> NodeKey:
    """A new P-384 key pair in OpenSSH format: folder/name (private, mode 0600) and folder/name.pub."""
    key = ec.generate_private_key(ec.SECP384R1())
    node_key = NodeKey(folder / name, folder / f"{name}.pub")
    _write_private(
        node_key.private,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ),
    )
    node_key.public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    return node_key


def private_folder(path: Path) -> Path:
    """path created as a folder only its owner can read."""
    path.mkdir(mode=0o700, parents=True, exist_ok=False)
    os.chmod(path, 0o700)
    return path
