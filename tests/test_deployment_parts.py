"""The local federation's parts that need no Flower process: credentials, the counting relay, refusal reasons."""

from __future__ import annotations

import datetime
import socket
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from deployment.credentials import private_folder, write_node_key, write_tls_files
from deployment.wire import CountingRelay
from fedvlm.cli import main


def test_the_server_certificate_is_signed_by_the_ca_for_the_named_hosts(tmp_path):
    files = write_tls_files(private_folder(tmp_path / "certs"), ("superlink.example", "127.0.0.1"))
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["superlink.example"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "certs").stat().st_mode) == 0o700


def test_an_expired_certificate_is_written_as_asked(tmp_path):
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    files = write_tls_files(private_folder(tmp_path / "certs"), valid_from=long_ago, days=30)
    server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
    assert server.not_valid_after_utc == datetime.datetime(2020, 1, 31, tzinfo=datetime.UTC)


def test_node_keys_are_p384_openssh_pairs(tmp_path):
    key = write_node_key(private_folder(tmp_path / "keys"), "site-0")
    private = load_ssh_private_key(key.private.read_bytes(), password=None)
    public = load_ssh_public_key(key.public.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    assert public.public_numbers() == private.public_key().public_numbers()
    assert key.public.read_text().startswith("ecdsa-sha2-nistp384 ")
    assert stat.S_IMODE(key.private.stat().st_mode) == 0o600


def test_the_cli_refuses_to_replace_keys(tmp_path, capsys):
    assert main(["federation", "node-key", "--out", str(tmp_path / "keys")]) == 0
    before = (tmp_path / "keys" / "supernode").read_bytes()
    assert main(["federation", "node-key", "--out", str(tmp_path / "keys")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "keys" / "supernode").read_bytes() == before


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(4096):
                connection.sendall(data * 2)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.parametrize("sizes", [[1], [1000, 70000, 3]])
def test_the_relay_counts_every_byte_each_way(sizes):
    server, port = _echo_server()
    relay = CountingRelay("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", relay.start())) as client:
            for size in sizes:
                client.sendall(b"x" * size)
                received = 0
                while received < 2 * size:
                    received += len(client.recv(65536))
        assert (relay.count.up, relay.count.down) == (sum(sizes), 2 * sum(sizes))
    finally:
        relay.stop()
        server.close()
