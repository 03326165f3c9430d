"""nginx_tls_mode: provided. A certificate or key that nginx cannot use is refused before anything
goes live; a good pair goes live, idempotently. Runs the role's TLS tasks (provided_tls.yml) with
extra vars, and once more without them at the end, which brings the self-signed certificate back."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playbook_runs import run_playbook, task_results

NAME = "ai.office.example"  # nginx_server_name in molecule.yml
LIVE = ("/etc/ssl/ai_stack/nginx.crt", "/etc/ssl/ai_stack/nginx.key")
REFUSAL = "Refuse a certificate or key that nginx cannot use"
PLAYBOOK = "provided_tls.yml"
SERVED = (
    f"openssl s_client -connect 127.0.0.1:443 -servername {NAME} </dev/null 2>/dev/null"
    " | openssl x509 -noout -fingerprint -sha256"
)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(name="files", scope="module")
def files_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good certificate and key, a key that does not match it, and a damaged certificate."""
    directory = tmp_path_factory.mktemp("provided-tls")
    key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(key).public_bytes(serialization.Encoding.PEM)
    lines = cert.decode().splitlines()
    content = {
        "good.crt": cert,
        "good.key": _key_pem(key),
        "other.key": _key_pem(other_key),
        # PEM armour intact, body cut in half: a truncated download or copy-paste accident.
        "broken.crt": "\n".join(lines[: len(lines) // 2] + lines[-1:]).encode() + b"\n",
    }
    paths = {}
    for name, data in content.items():
        paths[name] = directory / name
        paths[name].write_bytes(data)
    return paths


@pytest.fixture(name="restore_self_signed", scope="module")
def restore_self_signed_fixture():
    yield
    rc = run_playbook(PLAYBOOK)[0]
    assert rc == 0, "provided_tls.yml did not bring the self-signed certificate back"


def _provided(cert: Path, key: Path) -> dict[str, str]:
    return {"nginx_tls_mode": "provided", "nginx_tls_certificate_file": str(cert), "nginx_tls_key_file": str(key)}


def _live_state(host) -> dict[str, str]:
    """Checksums of the live certificate and key, and the certificate nginx serves."""
    state = {path: host.check_output(f"sha256sum {path}").split()[0] for path in LIVE}
    state["served"] = host.check_output(SERVED)
    return state


def _fingerprint(pem: bytes) -> str:
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@pytest.mark.parametrize(
    ("cert", "key", "nginx_says"),
    [("broken.crt", "good.key", "cannot load certificate"), ("good.crt", "other.key", "key values mismatch")],
    ids=["damaged-certificate", "key-does-not-match"],
)
def test_unusable_certificate_or_key_is_refused_before_it_goes_live(
    host, files, restore_self_signed, cert, key, nginx_says
):
    before = _live_state(host)
    rc, report = run_playbook(PLAYBOOK, extra_vars=_provided(files[cert], files[key]))
    assert rc != 0
    refusal = task_results(report, REFUSAL, host.backend.get_hostname())
    assert refusal, "the play failed elsewhere, not at the refusal"
    assert refusal[0].get("failed")
    assert nginx_says in refusal[0]["msg"]
    assert "the live certificate and key were left alone" in refusal[0]["msg"]
    assert _live_state(host) == before
    assert host.service("nginx").is_running


def test_usable_certificate_and_key_go_live_idempotently(host, files, restore_self_signed):
    extra_vars = _provided(files["good.crt"], files["good.key"])
    rc = run_playbook(PLAYBOOK, extra_vars=extra_vars)[0]
    assert rc == 0
    live = _live_state(host)
    assert live[LIVE[0]] == hashlib.sha256(files["good.crt"].read_bytes()).hexdigest()
    assert live[LIVE[1]] == hashlib.sha256(files["good.key"].read_bytes()).hexdigest()
    assert live["served"].strip() == f"sha256 Fingerprint={_fingerprint(files['good.crt'].read_bytes())}"
    assert host.file(LIVE[1]).mode == 0o600

    rc, report = run_playbook(PLAYBOOK, extra_vars=extra_vars)
    assert rc == 0
    assert report["stats"][host.backend.get_hostname()]["changed"] == 0, report["stats"]
