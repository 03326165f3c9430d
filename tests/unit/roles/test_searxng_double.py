"""The SearXNG TEST DOUBLE (tests/doubles/searxng_upstream) behaves like the upstream parts the
searxng role and its molecule scenario rely on: the repository build, setup.py's import of the
package, use_default_settings, the placeholder secret, search.formats, outgoing.proxies, the
version from git, limiter.toml and the limiter's key-value server, and the upstream server double.

msgspec and valkey are not in the controller's venv: small stand-ins replace them here (the scenario
installs the real ones from PyPI)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DOUBLE = REPO / "tests/doubles/searxng_upstream"
PUBLIC = "https://github.com/searxng/searxng"
SECRET = "s" * 40

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to build the double's repository")


def _load(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


forward_proxy = _load(REPO / "tests/doubles/forward_proxy/forward_proxy.py", "searxng_test_forward_proxy")
upstream_server = _load(DOUBLE / "upstream_server.py", "searxng_test_upstream_server")


class FakeValkey:
    """Stand-in for valkey.Valkey: an in-memory store; an URL with port 1 cannot connect."""

    store: dict[str, int]

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = {}

    @classmethod
    def from_url(cls, url: str) -> FakeValkey:
        return cls(url)

    def ping(self) -> bool:
        if ":1/" in self.url:
            raise ValkeyError("connection refused")
        return True

    def incr(self, key: str) -> int:
        self.store[key] = self.store.get(key, 0) + 1
        return self.store[key]

    def expire(self, key: str, seconds: int) -> bool:
        return key in self.store and seconds > 0


class ValkeyError(Exception):
    pass


def _stub_modules(monkeypatch) -> None:
    msgspec = types.ModuleType("msgspec")
    msgspec.json = types.SimpleNamespace(encode=lambda document: json.dumps(document).encode())  # type: ignore[attr-defined]
    valkey = types.ModuleType("valkey")
    valkey.Valkey = FakeValkey  # type: ignore[attr-defined]
    valkey.exceptions = types.SimpleNamespace(ValkeyError=ValkeyError)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "msgspec", msgspec)
    monkeypatch.setitem(sys.modules, "valkey", valkey)


def _git(*args: str, cwd: Path | None = None) -> str:
    # The doubles listen on loopback: no proxy the controller may have.
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(name="built", scope="module")
def built_fixture(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("searxng-double-repo")
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    subprocess.run([str(DOUBLE / "build-repo.sh"), str(out)], env=env, check=True, capture_output=True)
    return out


@pytest.fixture(name="checkout")
def checkout_fixture(built, tmp_path) -> Path:
    """A checkout of the pinned commit, as the role makes it: branch master, origin the public URL."""
    src = tmp_path / "searxng-src"
    _git("clone", "-q", "--no-checkout", "--branch", "master", str(built / "searxng.git"), str(src))
    _git("checkout", "-q", "--force", "-B", "master", (built / "commit").read_text().strip(), cwd=src)
    _git("remote", "set-url", "origin", PUBLIC + ".git", cwd=src)
    return src


class Double:
    def __init__(self, checkout: Path, tmp_path: Path, monkeypatch) -> None:
        self.checkout = checkout
        self.etc = tmp_path / "etc-searxng"
        self.etc.mkdir()
        self.monkeypatch = monkeypatch

    def start(self, settings: dict, environment: dict[str, str] | None = None, limiter_toml: str | None = None):
        """Import searx.webapp afresh (as granian does at start) and return it."""
        (self.etc / "settings.yml").write_text(yaml.safe_dump(settings))
        if limiter_toml is not None:
            (self.etc / "limiter.toml").write_text(limiter_toml)
        self.monkeypatch.setenv("SEARXNG_SETTINGS_PATH", str(self.etc / "settings.yml"))
        self.monkeypatch.delenv("SEARXNG_SECRET", raising=False)
        for key, value in (environment or {}).items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.chdir(self.checkout)
        for module in [m for m in sys.modules if m == "searx" or m.startswith("searx.")]:
            self.monkeypatch.delitem(sys.modules, module)
        self.monkeypatch.syspath_prepend(str(self.checkout))
        _stub_modules(self.monkeypatch)
        return importlib.import_module("searx.webapp")


@pytest.fixture(name="double")
def double_fixture(checkout, tmp_path, monkeypatch) -> Iterator[Double]:
    yield Double(checkout, tmp_path, monkeypatch)
    for module in [m for m in sys.modules if m == "searx" or m.startswith("searx.")]:
        del sys.modules[module]


def call(webapp, path: str, query: str = "", headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    environ: dict = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    environ["REMOTE_ADDR"] = "127.0.0.1"
    environ.update(headers or {})
    status: list[str] = []
    response_headers: dict[str, str] = {}

    def start_response(line: str, pairs: list[tuple[str, str]]) -> None:
        status.append(line)
        response_headers.update(pairs)

    body = b"".join(webapp.app(environ, start_response))
    return int(status[0].split()[0]), response_headers["Content-Type"], body


BASE = {"use_default_settings": True, "search": {"formats": ["html", "json"]}}


def test_the_repository_build_is_reproducible_and_has_a_newer_tip(built, tmp_path):
    again = tmp_path / "again"
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    run = subprocess.run(
        [str(DOUBLE / "build-repo.sh"), str(again)], env=env, capture_output=True, text=True, check=True
    )
    pinned = (built / "commit").read_text().strip()
    assert run.stdout.strip() == pinned == (again / "commit").read_text().strip()
    assert (built / "searxng.bundle").read_bytes() == (again / "searxng.bundle").read_bytes()
    assert (built / "searxng.bundle.sha256").read_text().strip() == hashlib.sha256(
        (built / "searxng.bundle").read_bytes()
    ).hexdigest()
    tip = (built / "tip").read_text().strip()
    assert tip != pinned
    assert _git("rev-parse", f"{tip}^", cwd=built / "searxng.git") == pinned
    # Ready for git's dumb HTTP protocol.
    assert (built / "searxng.git/info/refs").read_text().split() == [tip, "refs/heads/master"]
    # Once more into the same directory: nothing changes, and it says so.
    run = subprocess.run(
        [str(DOUBLE / "build-repo.sh"), str(again)], env=env, capture_output=True, text=True, check=True
    )
    assert "build-repo: unchanged" in run.stderr


def test_setup_py_imports_the_package_like_upstream(checkout):
    """Without msgspec (as in pip's isolated build environment) setup.py fails: the reason for
    upstream's install order."""
    script = (
        "import sys; sys.modules['msgspec'] = None; sys.path.insert(0, '.'); sys.argv = ['setup.py', '--version'];"
        "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=checkout, capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "msgspec" in run.stderr


def test_the_placeholder_secret_stops_the_server(double):
    with pytest.raises(SystemExit) as stopped:
        double.start(BASE)
    assert stopped.value.code == 1


@pytest.mark.parametrize(
    "environment",
    [{"SEARXNG_SECRET": SECRET}, {"SEARXNG_DEBUG": "1"}],
    ids=["SEARXNG_SECRET", "debug"],
)
def test_a_secret_from_the_environment_or_debug_lets_it_start(double, environment):
    webapp = double.start(BASE, environment)
    assert call(webapp, "/healthz") == (200, "text/plain; charset=utf-8", b"OK")
    if "SEARXNG_SECRET" in environment:
        assert webapp.get_setting("server.secret_key") == SECRET


def test_search_formats_decide_what_is_answered(double):
    webapp = double.start(BASE | {"engines": []}, {"SEARXNG_SECRET": SECRET})
    status, content_type, body = call(webapp, "/search", "q=test&format=json")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["query"] == "test"
    assert call(webapp, "/search", "q=test&format=csv")[0] == 403
    # A format upstream does not know counts as html.
    assert call(webapp, "/search", "q=test&format=xml")[:2] == (200, "text/html; charset=utf-8")
    assert call(webapp, "/search", "format=json") == (400, "application/json", b'{"error": "No query"}')


def test_upstream_s_default_formats_forbid_json(double):
    webapp = double.start({"use_default_settings": True}, {"SEARXNG_SECRET": SECRET})
    assert call(webapp, "/search", "q=test&format=json")[0] == 403


def test_use_default_settings_merges_and_filters_the_engines(double):
    settings = {
        "use_default_settings": {"engines": {"keep_only": ["wikipedia", "duckduckgo"]}},
        "general": {"instance_name": "Office search"},
        "search": {"formats": ["json"]},
        "engines": [{"name": "duckduckgo", "disabled": True}, {"name": "office index", "engine": "json_engine"}],
    }
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET})
    config = json.loads(call(webapp, "/config")[2])
    assert config["instance_name"] == "Office search"
    assert [(e["name"], e["enabled"]) for e in config["engines"]] == [
        ("wikipedia", True),
        ("duckduckgo", False),
        ("office index", True),
    ]
    # Defaults the file does not mention stay.
    assert webapp.get_setting("server.port") == 8888
    assert webapp.get_setting("outgoing.request_timeout") == 3.0


def test_without_use_default_settings_the_file_replaces_the_defaults(double):
    webapp = double.start(
        {"general": {"instance_name": "Alone", "debug": True}, "server": {}, "search": {"formats": ["html"]}}
    )
    assert webapp.get_setting("server.port", None) is None
    assert json.loads(call(webapp, "/config")[2])["engines"] == []


def test_version_and_source_come_from_the_checkout(double, checkout):
    webapp = double.start(BASE, {"SEARXNG_SECRET": SECRET})
    config = json.loads(call(webapp, "/config")[2])
    short = _git("rev-parse", "--short=7", "HEAD", cwd=checkout)
    assert config["version"] == f"2026.1.1+{short}"
    assert config["brand"]["GIT_URL"] == PUBLIC
    assert config["brand"]["GIT_BRANCH"] == "master"


def test_outside_its_checkout_it_reports_1_0_0(double, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    double.start(BASE, {"SEARXNG_SECRET": SECRET})
    # Started again from another working directory (the package still imports from the checkout).
    for module in [m for m in sys.modules if m == "searx" or m.startswith("searx.")]:
        del sys.modules[module]
    monkeypatch.chdir(elsewhere)
    webapp = importlib.import_module("searx.webapp")
    config = json.loads(call(webapp, "/config")[2])
    assert (config["version"], config["brand"]["GIT_URL"]) == ("1.0.0", "unknown")


def test_proxy_map_reads_upstream_s_outgoing_proxies(double):
    webapp = double.start(BASE, {"SEARXNG_SECRET": SECRET})
    proxy_map = sys.modules["searx.network"].proxy_map
    assert proxy_map(None) == {}
    assert proxy_map("http://p:3128") == {"http": "http://p:3128", "https": "http://p:3128"}
    assert proxy_map({"all://": ["http://a:1", "http://b:2"]}) == {"http": "http://a:1", "https": "http://a:1"}
    assert proxy_map({"http://": "http://a:1", "https://": "http://b:2", "all://example.org": "http://c:3"}) == {
        "http": "http://a:1",
        "https": "http://b:2",
    }
    assert webapp.app is webapp.application


@pytest.fixture(name="servers")
def servers_fixture(tmp_path, built) -> Iterator[dict]:
    proxy = forward_proxy.ProxyServer(("127.0.0.1", 0), tmp_path / "proxy.log", "office:pw")
    upstream = upstream_server.UpstreamServer(("127.0.0.1", 0), built, tmp_path / "upstream.log")
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (proxy, upstream)]
    for thread in threads:
        thread.start()
    yield {
        "proxy": f"127.0.0.1:{proxy.server_address[1]}",
        "upstream": f"127.0.0.1:{upstream.server_address[1]}",
        "proxy_log": tmp_path / "proxy.log",
        "upstream_log": tmp_path / "upstream.log",
    }
    for server in (proxy, upstream):
        server.shutdown()
        server.server_close()


def _engine(upstream: str) -> dict:
    return {
        "name": "office index",
        "engine": "json_engine",
        "shortcut": "oi",
        "enable_http": True,
        "search_url": f"http://{upstream}/search?q={{query}}",
        "results_query": "results",
        "url_query": "url",
        "title_query": "title",
        "content_query": "content",
    }


def test_searches_go_through_outgoing_proxies_with_credentials(double, servers, monkeypatch):
    # The environment's proxy variables are not used, as upstream's.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    settings = BASE | {
        "use_default_settings": {"engines": {"keep_only": []}},
        "outgoing": {"proxies": {"all://": f"http://office:pw@{servers['proxy']}"}},
        "engines": [_engine(servers["upstream"])],
    }
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET})
    answer = json.loads(call(webapp, "/search", "q=hello%20proxy&format=json")[2])
    assert [r["title"] for r in answer["results"]] == ["engine double result for hello proxy"]
    assert answer["unresponsive_engines"] == []
    assert servers["proxy_log"].read_text().splitlines() == [f"GET http://{servers['upstream']}/search?q=hello%20proxy"]
    assert servers["upstream_log"].read_text().splitlines() == ["GET /search?q=hello%20proxy"]


def test_plain_http_needs_enable_http_as_upstream(double, servers):
    engine = _engine(servers["upstream"]) | {"enable_http": False}
    settings = BASE | {"use_default_settings": {"engines": {"keep_only": []}}, "engines": [engine]}
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET})
    answer = json.loads(call(webapp, "/search", "q=x&format=json")[2])
    assert answer["unresponsive_engines"] == [["office index", "UnsupportedProtocol: http:// without enable_http"]]
    assert not servers["upstream_log"].exists()


def test_a_wrong_proxy_password_makes_the_engine_unresponsive(double, servers):
    settings = BASE | {
        "use_default_settings": {"engines": {"keep_only": ["wikipedia"]}},
        "outgoing": {"proxies": f"http://office:wrong@{servers['proxy']}"},
        "engines": [_engine(servers["upstream"])],
    }
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET})
    answer = json.loads(call(webapp, "/search", "q=x&format=json")[2])
    assert answer["results"] == []
    assert answer["unresponsive_engines"] == [
        ["wikipedia", "not implemented by the test double"],
        ["office index", "HTTP error 407"],
    ]


def test_the_limiter_counts_forwarded_clients_in_valkey(double):
    toml = '[botdetection]\ntrusted_proxies = ["127.0.0.0/8"]\n[botdetection.ip_lists]\npass_ip = ["127.0.0.1"]\n'
    settings = BASE | {"engines": [], "server": {"limiter": True}, "valkey": {"url": "valkey://127.0.0.1:6379/0"}}
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET}, limiter_toml=toml)
    assert json.loads(call(webapp, "/config")[2])["limiter"] == {"enabled": True}
    # Loopback (Open WebUI) passes uncounted; a browser behind nginx counts under its own address,
    # the rightmost one a trusted proxy did not add.
    call(webapp, "/search", "q=a&format=json")
    call(webapp, "/search", "q=b&format=json", {"HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"})
    expected = "SearXNG_counter_" + hashlib.sha256(b"203.0.113.7").hexdigest()[:16]
    assert webapp.LIMITER.client.store == {expected: 1}


def test_the_limiter_goes_on_without_its_key_value_server(double):
    settings = BASE | {"engines": [], "server": {"limiter": True}, "valkey": {"url": "valkey://127.0.0.1:1/0"}}
    webapp = double.start(settings, {"SEARXNG_SECRET": SECRET})
    assert json.loads(call(webapp, "/config")[2])["limiter"] == {"enabled": False}
    assert call(webapp, "/search", "q=a&format=json")[0] == 200


def test_a_broken_limiter_toml_stops_the_server(double):
    with pytest.raises(ValueError, match=r"(?i)expected|invalid"):
        double.start(BASE, {"SEARXNG_SECRET": SECRET}, limiter_toml="[botdetection\n")


def test_the_upstream_double_serves_git_over_dumb_http(servers, built, tmp_path):
    clone = tmp_path / "clone"
    _git("clone", "-q", "--branch", "master", f"http://{servers['upstream']}/git/searxng.git", str(clone))
    assert _git("rev-parse", "HEAD", cwd=clone) == (built / "tip").read_text().strip()
    assert "GET /git/searxng.git/info/refs?service=git-upload-pack" in servers["upstream_log"].read_text()
