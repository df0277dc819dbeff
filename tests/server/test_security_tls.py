"""TLS (tls_mode 1) and mutual TLS (tls_mode 2) on both ports, as pymilvus connects.

Certificates are made here with `cryptography`: a CA, a server certificate for
localhost/127.0.0.1, a client certificate, and a second CA nobody trusts. Refusals are
asserted as refusals (pymilvus code 2 "Fail connecting"); they carry short client
timeouts only so a refused handshake does not wait the default 10 s. Under the `cluster`
target each mode is a proxy of the security cluster started with those flags.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ShoalProcess, cluster_proxy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pymilvus import MilvusClient, MilvusException


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, str]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".pem")
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def _cert(subject: str, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Name] | None, ca: bool = False,
          server: bool = False) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer_key, signer_name = issuer if issuer is not None else (key, _name(subject))
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(signer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        ), critical=False)
    return key, builder.sign(signer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _cert("shoal test CA", None, ca=True)
    rogue_key, rogue = _cert("rogue CA", None, ca=True)
    out: dict[str, str] = {}
    out["ca"], _ = _write(d / "ca", ca_key, ca)
    out["rogue_ca"], _ = _write(d / "rogue", rogue_key, rogue)
    out["server"], out["server_key"] = _write(d / "server", *_cert("localhost", (ca_key, ca.subject), server=True))
    out["client"], out["client_key"] = _write(d / "client", *_cert("client", (ca_key, ca.subject)))
    out["rogue_client"], out["rogue_client_key"] = _write(d / "rclient", *_cert("client", (rogue_key, rogue.subject)))
    return out


def _serve(request: pytest.FixtureRequest, target: str, base: Path, pki: dict[str, str], mode: int) -> ShoalProcess:
    args = ["--tls-mode", str(mode), "--tls-cert", pki["server"], "--tls-key", pki["server_key"]]
    if mode == 2:
        args += ["--tls-ca", pki["ca"]]
    if target == "cluster":
        return cluster_proxy(request.getfixturevalue("security_cluster"), base, args)
    proc = ShoalProcess(base / "data", base / "server.log", args)
    proc.start()
    return proc


@pytest.fixture(scope="module")
def one_way(request: pytest.FixtureRequest, server_target: str, tmp_path_factory: pytest.TempPathFactory,
            pki: dict[str, str]) -> Iterator[ShoalProcess]:
    proc = _serve(request, server_target, tmp_path_factory.mktemp("tls1"), pki, 1)
    yield proc
    assert proc.stop() == 0, proc.tail()


@pytest.fixture(scope="module")
def mutual(request: pytest.FixtureRequest, server_target: str, tmp_path_factory: pytest.TempPathFactory,
           pki: dict[str, str]) -> Iterator[ShoalProcess]:
    proc = _serve(request, server_target, tmp_path_factory.mktemp("tls2"), pki, 2)
    yield proc
    assert proc.stop() == 0, proc.tail()


def _refused(**kwargs: object) -> None:
    with pytest.raises(MilvusException) as e:
        MilvusClient(timeout=5, dedicated=True, **kwargs)  # pymilvus shares connections by address|token
    assert e.value.code == 2, e.value


def test_one_way_tls(one_way: ShoalProcess, pki: dict[str, str]) -> None:
    uri = f"https://127.0.0.1:{one_way.port}"
    c = MilvusClient(uri=uri, secure=True, server_pem_path=pki["ca"], server_name="localhost")
    c.create_database("tls")  # a database of its own: the security cluster serves other modules too
    c.use_database("tls")
    c.create_collection("tls_demo", dimension=4)
    c.insert("tls_demo", [{"id": 1, "vector": [0.1] * 4}])
    assert c.query("tls_demo", filter="id == 1")[0]["id"] == 1
    c.close()
    _refused(uri=f"http://127.0.0.1:{one_way.port}")  # plaintext
    _refused(uri=uri, secure=True, server_pem_path=pki["rogue_ca"], server_name="localhost")  # wrong CA


def test_mutual_tls(mutual: ShoalProcess, pki: dict[str, str]) -> None:
    uri = f"https://127.0.0.1:{mutual.port}"
    c = MilvusClient(uri=uri, secure=True, client_pem_path=pki["client"], client_key_path=pki["client_key"],
                     ca_pem_path=pki["ca"], server_name="localhost")
    assert "default" in c.list_databases()
    c.close()
    _refused(uri=uri, secure=True, server_pem_path=pki["ca"], server_name="localhost")  # no client cert
    _refused(uri=uri, secure=True, client_pem_path=pki["rogue_client"], client_key_path=pki["rogue_client_key"],
             ca_pem_path=pki["ca"], server_name="localhost")  # a client cert from another CA
    _refused(uri=f"http://127.0.0.1:{mutual.port}")


def test_http_port_speaks_tls(one_way: ShoalProcess, mutual: ShoalProcess, pki: dict[str, str]) -> None:
    ctx = ssl.create_default_context(cafile=pki["ca"])
    for proc in (one_way, mutual):  # probes carry no client certificate, even under mTLS
        with urllib.request.urlopen(f"https://localhost:{proc.http_port}/healthz", context=ctx, timeout=60) as r:
            assert r.status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{one_way.http_port}/healthz", timeout=60)
    with pytest.raises(urllib.error.URLError) as wrong_ca:
        urllib.request.urlopen(f"https://localhost:{one_way.http_port}/healthz",
                               context=ssl.create_default_context(cafile=pki["rogue_ca"]), timeout=60)
    assert isinstance(wrong_ca.value.reason, ssl.SSLError)
