"""The keys and certificates the demo instance stores, as the real app and its users made them:
node-forge's CRLF RSA deploy keys, pasted keys, ``openssl ecparam`` output, self-signed
certificates. Generated once per process (RSA 4096 takes seconds) and reused by every instance."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPool:
    # node-forge RSA 4096 deploy keys: (PKCS#1 PEM with CRLF, "ssh-rsa <base64> ")
    deploy_keys: tuple[tuple[str, str], ...]
    github_pems: tuple[str, ...]  # a GitHub App's downloaded .pem: PKCS#1 RSA 2048, LF
    ssh_keys: tuple[str, ...]  # SshKey.privateKey kinds: CRLF PKCS#1, ed25519, RSA 4096, EC params
    ftp_host_keys: tuple[tuple[str, str], ...]  # ssh-keygen: (ed25519, RSA 4096), OpenSSH format
    certificates: tuple[tuple[str, str], ...]  # (key, cert): EC params, CRLF PKCS#8, LF PKCS#1


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, host: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    start = dt.datetime(2023, 6, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@functools.lru_cache(maxsize=1)
def key_pool() -> KeyPool:
    pem = serialization.Encoding.PEM
    nopw = serialization.NoEncryption()
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    openssh = serialization.PrivateFormat.OpenSSH
    big = [rsa.generate_private_key(public_exponent=65537, key_size=4096) for _ in range(2)]
    small = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
    eds = [ed25519.Ed25519PrivateKey.generate() for _ in range(3)]
    ecs = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]

    def text(key: Any, fmt: serialization.PrivateFormat) -> str:
        return str(key.private_bytes(pem, fmt, nopw).decode())

    deploy = tuple(
        (
            # forge.pki.privateKeyToPem: 64-column base64, "\r\n" after every line
            _crlf(text(k, pkcs1)),
            # forge.ssh.publicKeyToOpenSSH(key, comment=''): "ssh-rsa <b64> " + ''
            k.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
            + " ",
        )
        for k in big
    )
    # `openssl ecparam -name prime256v1 -genkey`: the curve's OID block, then the SEC1 key.
    ec_params = tuple(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
        + text(k, pkcs1)
        for k in ecs
    )
    ssh_keys = (
        _crlf(text(small[1], pkcs1)),
        text(eds[0], openssh),
        text(big[1], openssh),
        ec_params[0],
    )
    ftp = tuple((text(eds[i], openssh), text(big[i % 2], openssh)) for i in (1, 2))
    pkcs8 = serialization.PrivateFormat.PKCS8
    certificates = (
        (ec_params[1], _self_signed(ecs[1], "shop.example.com")),
        (_crlf(text(small[0], pkcs8)), _crlf(_self_signed(small[0], "intranet.example.org"))),
        (text(small[1], pkcs1), _self_signed(small[1], "api.example.net")),
    )
    return KeyPool(
        deploy_keys=deploy,
        github_pems=tuple(text(k, pkcs1) for k in small),
        ssh_keys=ssh_keys,
        ftp_host_keys=ftp,
        certificates=certificates,
    )
