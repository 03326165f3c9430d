"""nginx's TLS as a scanner on the controller sees it: sslyze against the Mozilla "intermediate"
profile, through the port molecule.yml publishes on the controller's loopback (127.0.0.1:18444), with
the server name as SNI and Host. One scan for every test here; the private key's permissions are read
on the host."""

from __future__ import annotations

import re
import time
import typing as t

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

NAME = "ai.office.example"  # nginx_server_name in molecule.yml
PUBLISHED = ("127.0.0.1", 18444)  # published_ports in molecule.yml
KEY, CERTIFICATE, TLS_DIR = "/etc/ssl/ai_stack/nginx.key", "/etc/ssl/ai_stack/nginx.crt", "/etc/ssl/ai_stack"
ONE_YEAR = 365 * 24 * 3600

# The role's ssl_ciphers for TLS 1.2 as IANA names; its certificate is ECDSA (P-256), so only the
# ECDSA half can be negotiated. Anything else accepted fails the test.
TLS12_EXPECTED = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
}
TLS13_EXPECTED = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
# Weak by name: CBC with SHA-1 MACs (..._CBC_SHA), RC4, 3DES, NULL, EXPORT, anonymous key exchange.
WEAK = re.compile(r"_CBC_SHA$|RC4|3DES|_DES_|NULL|EXPORT|_anon_|_ANON_")
# Forward secrecy: ephemeral (EC)DH key exchange.
FORWARD_SECRET = re.compile(r"^TLS_(ECDHE|DHE)_")

# Findings of Mozilla's checker that only a certificate from a public CA would clear: the role's
# self-signed certificate is not trusted by anyone's store, and lives nginx_tls_self_signed_days
# (825) while the profile's limit (366 days) is that of publicly trusted certificates. Only waived
# for a self-signed certificate; every other finding fails.
SELF_SIGNED_WAIVERS = {"certificate_path_validation", "maximum_certificate_lifespan"}

# A root in sslyze's bundled trust store has a serial number that cryptography frowns upon.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")


@pytest.fixture(name="scan", scope="module")
def scan_fixture() -> ServerScanResult:
    started = time.monotonic()
    location = ServerNetworkLocation(hostname=NAME, port=PUBLISHED[1], ip_address=PUBLISHED[0])
    commands = SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER | {ScanCommand.HTTP_HEADERS}
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands=commands)])
    (result,) = scanner.get_results()
    print(f"sslyze scan of {NAME} on {PUBLISHED[0]}:{PUBLISHED[1]}: {time.monotonic() - started:.1f} s")
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result


def _attempt(scan: ServerScanResult, command: ScanCommand) -> t.Any:
    attempt = getattr(scan.scan_result, command.value)
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, (command, attempt.error_trace)
    return attempt.result


def _accepted(scan: ServerScanResult, command: ScanCommand) -> set[str]:
    return {suite.cipher_suite.name for suite in _attempt(scan, command).accepted_cipher_suites}


def _leaf(scan: ServerScanResult) -> x509.Certificate:
    deployment = _attempt(scan, ScanCommand.CERTIFICATE_INFO).certificate_deployments[0]
    return deployment.received_certificate_chain[0]


def test_mozilla_intermediate_profile(scan: ServerScanResult) -> None:
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    try:
        check_server_against_tls_configuration(scan, profile)
        issues: dict[str, str] = {}
    except ServerNotCompliantWithTlsConfiguration as error:
        issues = dict(error.issues)
    leaf = _leaf(scan)
    waived = SELF_SIGNED_WAIVERS if leaf.issuer == leaf.subject else set()
    assert {key: why for key, why in issues.items() if key not in waived} == {}


@pytest.mark.parametrize(
    "command",
    [
        ScanCommand.SSL_2_0_CIPHER_SUITES,
        ScanCommand.SSL_3_0_CIPHER_SUITES,
        ScanCommand.TLS_1_0_CIPHER_SUITES,
        ScanCommand.TLS_1_1_CIPHER_SUITES,
    ],
    ids=["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"],
)
def test_old_protocols_refused(scan: ServerScanResult, command: ScanCommand) -> None:
    result = _attempt(scan, command)
    assert not result.is_tls_version_supported, _accepted(scan, command)
    assert result.rejected_cipher_suites, "the scanner offered nothing, so the refusal proves nothing"


def test_tls12_only_strong_forward_secret_ciphers(scan: ServerScanResult) -> None:
    accepted = _accepted(scan, ScanCommand.TLS_1_2_CIPHER_SUITES)
    assert {name for name in accepted if WEAK.search(name)} == set()
    assert {name for name in accepted if not FORWARD_SECRET.match(name)} == set()
    assert accepted == TLS12_EXPECTED


def test_tls13_accepted(scan: ServerScanResult) -> None:
    assert _accepted(scan, ScanCommand.TLS_1_3_CIPHER_SUITES) == TLS13_EXPECTED


def test_hsts_for_at_least_a_year(scan: ServerScanResult) -> None:
    headers = _attempt(scan, ScanCommand.HTTP_HEADERS)
    assert headers.http_error_trace is None, headers.http_error_trace
    hsts = headers.strict_transport_security_header
    assert hsts is not None, f"no Strict-Transport-Security header on {headers.http_request_sent!r}"
    assert hsts.max_age is not None and hsts.max_age >= ONE_YEAR, hsts
    assert hsts.include_subdomains


def test_private_key_is_the_served_ones_and_root_only(host, scan: ServerScanResult) -> None:
    # The key the scanner met is the one whose permissions are checked here.
    served = (
        _leaf(scan)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert host.check_output(f"openssl pkey -in {KEY} -pubout").strip() == served.decode().strip()
    key, directory = host.file(KEY), host.file(TLS_DIR)
    assert (key.user, key.group) == ("root", "root")
    # 0600 as the role sets it; 0640 would do for a key shared with a group, never more.
    assert key.mode in (0o600, 0o640), oct(key.mode)
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    # No other key in the directory (a staged provided key) is readable beyond root.
    for path in host.check_output(f"find {TLS_DIR} -type f -name '*.key'").split():
        staged = host.file(path)
        assert staged.user == "root" and staged.mode & 0o037 == 0, (path, oct(staged.mode))
    certificate = host.file(CERTIFICATE)
    assert certificate.user == "root" and certificate.mode & 0o022 == 0, oct(certificate.mode)
