# PRIVATE module_utils: internal to the selfhosted.ai_stack collection. Its API may change without notice;
# do not import it from other collections or playbooks.
#
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for the Ollama HTTP API plus Ollama's model-name rules.

Built on ``ansible.module_utils.urls.open_url`` so it runs on any managed node with
nothing but ansible-core (no ``requests``). Must stay importable on every target
Python that ansible-core supports (3.8+): annotations are strings only.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_PORT = "11434"
HTTP_AGENT = "ansible-selfhosted.ai_stack"

# socket.timeout only became an alias of TimeoutError in Python 3.10; targets may run 3.8/3.9.
_TIMEOUTS = (socket.timeout, TimeoutError)

# Limits from Ollama's types/model/name.go (isValidLen).
_MAX_HOST_LEN = 350
_MAX_PART_LEN = 80


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
class OllamaError(Exception):
    """Any failure talking to Ollama. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OllamaNotFoundError(OllamaError):
    """HTTP 404: the model (or endpoint) does not exist."""


class OllamaTransientError(OllamaError):
    """The exchange was cut short (refused/reset connection, stream closed before ``success``).

    Retrying may help: Ollama keeps partial downloads and resumes them on the next pull.
    """


class OllamaTimeoutError(OllamaTransientError):
    """Connecting or a single read took longer than the client's ``timeout``."""


# --------------------------------------------------------------------------------------------------
# Model names: [host/][namespace/]model[:tag], defaults registry.ollama.ai / library / latest
# --------------------------------------------------------------------------------------------------
class ModelName(NamedTuple):
    host: str
    namespace: str
    model: str
    tag: str


def _valid_part(kind: str, value: str) -> bool:
    """Mirror Ollama's isValidPart: [A-Za-z0-9_] first, then also '-' '_' '.', ':' only in hosts."""
    limit = _MAX_HOST_LEN if kind == "host" else _MAX_PART_LEN
    if not value or len(value) > limit or not value.isascii():
        return False
    if not (value[0].isalnum() or value[0] == "_"):
        return False
    for char in value[1:]:
        if char.isalnum() or char in "_-":
            continue
        if char == "." and kind != "namespace":
            continue
        if char == ":" and kind == "host":
            continue
        return False
    return True


def _split_last(value: str, sep: str) -> tuple[str, str]:
    before, _sep, after = value.rpartition(sep)
    return before, after


def parse_model_name(name: str) -> ModelName:
    """Parse like Ollama's ParseName (ParseNameBare + defaults) and validate every part.

    Raises ValueError for names Ollama itself would reject as "invalid model name".
    """
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    rest = name
    tag: str | None = None
    # A tag can only live in the last path segment: "host:5000/ns/model" has a port, not a tag.
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = _split_last(rest, ":")
    host: str | None = None
    namespace: str | None = None
    model = rest
    if "/" in rest:
        rest, model = _split_last(rest, "/")
        namespace = rest
        if "/" in rest:
            host, namespace = _split_last(rest, "/")
            # Ollama accepts (and drops) a scheme in front of the host: https://hf.co/org/repo.
            if "://" in host:
                host = host.split("://", 1)[1]
    parts = ModelName(
        host=DEFAULT_HOST if host is None else host,
        namespace=DEFAULT_NAMESPACE if namespace is None else namespace,
        model=model,
        tag=DEFAULT_TAG if tag is None else tag,
    )
    for kind, value in parts._asdict().items():
        if not _valid_part(kind, value):
            raise ValueError(f"invalid model name {name!r}: {kind} {value!r} is not valid")
    return parts


def display_name(parts: ModelName) -> str:
    """Ollama's DisplayShortest: what /api/tags lists (default host/namespace dropped, tag kept)."""
    if parts.host.lower() != DEFAULT_HOST:
        prefix = f"{parts.host}/{parts.namespace}/"
    elif parts.namespace.lower() != DEFAULT_NAMESPACE:
        prefix = f"{parts.namespace}/"
    else:
        prefix = ""
    return f"{prefix}{parts.model}:{parts.tag}"


def normalize_model_name(name: str) -> str:
    """Return the name as Ollama displays it, e.g. ``registry.ollama.ai/library/llama3.2`` -> ``llama3.2:latest``.

    Case is preserved (Ollama keeps it for display); use model_key()/same_model() to compare.
    """
    return display_name(parse_model_name(name))


def model_key(name: str) -> str:
    """Comparison key: Ollama compares names case-insensitively (ASCII EqualFold; names are ASCII)."""
    return normalize_model_name(name).lower()


def same_model(first: str, second: str) -> bool:
    """True when both names refer to the same Ollama model."""
    return model_key(first) == model_key(second)


def find_model(models: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """Pick ``name`` out of an /api/tags ``models`` list, or None."""
    wanted = model_key(name)
    for entry in models:
        listed = str(entry.get("name") or entry.get("model") or "")
        try:
            key = model_key(listed)
        except ValueError:
            key = listed.lower()  # a name we cannot parse can still match verbatim
        if key == wanted:
            return entry
    return None


# --------------------------------------------------------------------------------------------------
# Base URL: same rules as OLLAMA_HOST (envconfig.Host)
# --------------------------------------------------------------------------------------------------
def _split_host_port(hostport: str) -> tuple[str | None, str | None]:
    """Loose net.SplitHostPort: returns (None, None) when there is no explicit port."""
    if hostport.startswith("["):
        host, sep, port = hostport[1:].partition("]:")
        return (host, port) if sep else (None, None)
    if hostport.count(":") != 1:
        return None, None  # no port, or a bare IPv6 address
    host, port = hostport.split(":")
    return host, port


def ollama_base_url(host: str) -> str:
    """Turn an OLLAMA_HOST-style value into a base URL.

    ``127.0.0.1:11434`` and ``0.0.0.0`` work without a scheme (http, port 11434). As with
    OLLAMA_HOST, an explicit ``http://name`` without a port means port 80 (``https://`` 443).
    """
    value = host.strip()
    scheme, sep, hostport = value.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", value
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    else:
        raise ValueError(f"unsupported scheme in Ollama host {host!r}: use http:// or https://")
    hostport, _slash, path = hostport.partition("/")
    name, port = _split_host_port(hostport)
    if name is None:
        name, port = hostport.strip("[]") or "127.0.0.1", default_port
    name = name or "127.0.0.1"
    if not port or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid port in Ollama host {host!r}")
    if ":" in name:
        name = f"[{name}]"
    url = f"{scheme}://{name}:{port}"
    return f"{url}/{path.strip('/')}" if path.strip("/") else url


def is_loopback(hostname: str) -> bool:
    """Local addresses that must never go through an HTTP proxy."""
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------
def _hostname(base_url: str) -> str:
    hostport = base_url.partition("://")[2].partition("/")[0]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.rpartition(":")[0] or hostport


def _error_text(body: bytes, fallback: str) -> str:
    """Ollama reports errors as {"error": "..."}; fall back to the raw body or HTTP reason."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    text = body.decode("utf-8", "replace").strip()
    return text[:500] or fallback


class OllamaClient:
    """Minimal Ollama API client.

    Proxies: open_url honours ``http_proxy``/``https_proxy`` and ``no_proxy`` from the environment
    (urllib). Loopback hosts (127.0.0.0/8, ::1, localhost) bypass any proxy even when ``no_proxy``
    is unset, because a corporate proxy can never reach the node's own Ollama. For a remote Ollama
    behind such a proxy, list it in ``no_proxy`` (e.g. with the task's ``environment:`` keyword).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 30,
        validate_certs: bool = True,
        use_proxy: bool | None = None,
        http_agent: str = HTTP_AGENT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.use_proxy = (not is_loopback(_hostname(self.base_url))) if use_proxy is None else use_proxy
        self.http_agent = http_agent

    # -- plumbing ----------------------------------------------------------------------------------
    def _open(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send a request; map every failure onto the OllamaError family."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json, application/x-ndjson"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            return open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                use_proxy=self.use_proxy,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                http_agent=self.http_agent,
                follow_redirects="safe",
            )
        except HTTPError as exc:
            raise self._http_error(method, path, exc) from exc
        except URLError as exc:
            reason = exc.reason
            if isinstance(reason, _TIMEOUTS):
                raise OllamaTimeoutError(f"timed out after {self.timeout}s connecting to {url}") from exc
            raise OllamaTransientError(f"cannot reach {url}: {reason}") from exc
        except UrlsConnectionError as exc:  # TLS validation and proxy problems: retrying won't help
            raise OllamaError(f"cannot connect to {url}: {exc}") from exc
        except _TIMEOUTS as exc:
            raise OllamaTimeoutError(f"timed out after {self.timeout}s waiting for {url}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise OllamaTransientError(f"connection to {url} failed: {exc!r}") from exc

    @staticmethod
    def _http_error(method: str, path: str, exc: HTTPError) -> OllamaError:
        try:
            body = exc.read() or b""
        except (OSError, http.client.HTTPException):
            body = b""
        message = _error_text(body, f"HTTP {exc.code} {exc.reason}")
        cls = OllamaNotFoundError if exc.code == 404 else OllamaError
        return cls(f"{method} {path} returned HTTP {exc.code}: {message}", status=exc.code)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._open(method, path, body)
        try:
            raw = response.read()
        except _TIMEOUTS as exc:
            raise OllamaTimeoutError(f"timed out after {self.timeout}s reading {path}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise OllamaTransientError(f"reading {path} failed: {exc!r}") from exc
        finally:
            response.close()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise OllamaError(f"{method} {path} did not return JSON: {raw[:200]!r}") from exc

    # -- API ---------------------------------------------------------------------------------------
    def version(self) -> str:
        return str(self._json("GET", "/api/version").get("version", ""))

    def list_models(self) -> list[dict[str, Any]]:
        """GET /api/tags: the locally available models."""
        return list(self._json("GET", "/api/tags").get("models") or [])

    def find_model(self, name: str) -> dict[str, Any] | None:
        return find_model(self.list_models(), name)

    def show(self, name: str) -> dict[str, Any] | None:
        """POST /api/show: model details, or None when Ollama does not have the model."""
        try:
            return self._json("POST", "/api/show", {"model": name})
        except OllamaNotFoundError:
            return None

    def delete(self, name: str) -> None:
        """DELETE /api/delete; raises OllamaNotFoundError when the model is not there."""
        self._json("DELETE", "/api/delete", {"model": name})

    def pull(
        self,
        name: str,
        insecure: bool = False,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """POST /api/pull and follow the NDJSON progress stream until ``success``.

        Ollama sends HTTP 200 before it knows whether the pull works, so failures arrive as a
        ``{"error": ...}`` line in the middle of the stream: every line is checked. A stream that
        ends without ``success`` (or a read timeout) raises OllamaTransientError; pulling again
        resumes the partial download.
        """
        body = {"model": name, "insecure": insecure, "stream": True}
        response = self._open("POST", "/api/pull", body)
        try:
            return self._follow_pull_stream(response, on_progress)
        except _TIMEOUTS as exc:
            raise OllamaTimeoutError(f"no progress from Ollama for {self.timeout}s while pulling") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise OllamaTransientError(f"pull stream broke off: {exc!r}") from exc
        finally:
            response.close()

    @staticmethod
    def _follow_pull_stream(response: Any, on_progress: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        success: dict[str, Any] | None = None
        last_status = None
        for raw in iter(response.readline, b""):
            line = raw.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError as exc:
                raise OllamaError(f"unexpected line in pull stream: {line[:200]!r}") from exc
            if not isinstance(message, dict):
                raise OllamaError(f"unexpected line in pull stream: {line[:200]!r}")
            if "error" in message:
                raise OllamaError(str(message["error"]))
            if on_progress is not None:
                on_progress(message)
            last_status = message.get("status", last_status)
            if last_status == "success":
                success = message
        if success is None:
            raise OllamaTransientError(f"pull stream ended without 'success' (last status: {last_status!r})")
        return success
