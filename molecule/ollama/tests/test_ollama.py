"""The converged host: install layout, user, unit, sandbox, environment, API and models."""

from __future__ import annotations

import re

from service_checks import assert_secrets_hidden_from_other_users

VERSION = "0.13.5"
MODELS_DIR = "/usr/share/ollama/.ollama/models"
GUIDE_MODELS = {"deepseek-r1:8b-0528-qwen3-q4_K_M", "qwen2.5vl:7b", "snowflake-arctic-embed2:latest"}
# Measured 1.4 for the CPU unit (GPU units trade PrivateDevices for a device allow-list).
MAX_EXPOSURE = 2.0


def _environment(host) -> dict[str, str]:
    line = host.check_output("systemctl show ollama -p Environment --value")
    # systemd quotes values with spaces; ours have none except where a test sets them.
    return dict(item.split("=", 1) for item in line.split())


def test_service_active_and_enabled(host):
    ollama = host.service("ollama")
    assert ollama.is_running
    assert ollama.is_enabled


def test_restart_policy_as_in_the_guide(host):
    out = host.check_output("systemctl show ollama -p Restart -p RestartUSec -p User -p ExecStart")
    assert "Restart=always" in out
    assert "RestartUSec=3s" in out
    assert "User=ollama" in out
    assert "path=/usr/local/bin/ollama ; argv[]=/usr/local/bin/ollama serve" in out


def test_listens_on_loopback_only(host):
    listeners = host.check_output("ss -H -tlnp").splitlines()
    ollama = [line.split()[3] for line in listeners if "11434" in line.split()[3]]
    assert ollama == ["127.0.0.1:11434"], listeners


def test_unit_environment_matches_the_assignment(host):
    env = _environment(host)
    # No GPU in CI: pinned to the CPU, with the device order set all the same.
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["OLLAMA_HOST"] == "127.0.0.1:11434"
    assert env["OLLAMA_MODELS"] == MODELS_DIR
    assert env["OLLAMA_KEEP_ALIVE"] == "30m"
    assert env["OLLAMA_NUM_PARALLEL"] == "2"
    assert env["OLLAMA_MAX_LOADED_MODELS"] == "0"
    assert env["OLLAMA_FLASH_ATTENTION"] == "1"
    assert env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert env["OLLAMA_VULKAN"] == "0"
    assert env["OLLAMA_CONTEXT_LENGTH"] == "8192"  # ollama_environment_extra
    assert env["OLLAMA_NOPRUNE"] == "1"  # a boolean extra becomes 1
    # The proxy is in the root-only environment file, not in the unit.
    assert not {"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"} & set(env)
    assert env["PATH"].split(":")[0] == "/usr/local/cuda/bin"


PROXY_PASSWORD = "Ollama-proxy-S3cret"
PROXY = f"http://office:{PROXY_PASSWORD}@proxy.office.example:3128"
ENV_FILE = "/etc/ai_stack/env/ollama.env"


def test_proxy_password_only_in_the_root_only_environment_file(host):
    env_file = host.file(ENV_FILE)
    assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600)
    assert f"https_proxy='{PROXY}'" in env_file.content_string
    assert host.check_output("systemctl show ollama -p EnvironmentFiles --value").startswith(ENV_FILE)
    # Nothing an unprivileged user can read shows it: not systemctl show, not the unit, no file.
    trees = "/etc /usr/local /usr/share/ollama /var /opt /run"
    assert_secrets_hidden_from_other_users(host, "ollama", [PROXY_PASSWORD], trees)


def test_running_process_got_the_environment(host):
    pid = host.check_output("systemctl show ollama -p MainPID --value")
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()
    assert "CUDA_VISIBLE_DEVICES=-1" in environ
    assert "OLLAMA_KV_CACHE_TYPE=q8_0" in environ
    # From the environment file: the service really gets the proxy (password included).
    assert f"https_proxy={PROXY}" in environ
    assert "NO_PROXY=" + ",".join(["localhost", "127.0.0.1", "::1"]) in "\n".join(environ)
    assert host.check_output(f"stat -c %U /proc/{pid}") == "ollama"


def test_service_user(host):
    user = host.user("ollama")
    assert user.exists
    assert user.group == "ollama"
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")
    assert user.home == "/usr/share/ollama"
    assert user.uid < 1000
    existing = {group for group in ("render", "video") if host.group(group).exists}
    assert existing <= set(user.groups), user.groups
    assert "sudo" not in user.groups


def test_models_dir_owned_by_ollama(host):
    models = host.file(MODELS_DIR)
    assert models.is_directory
    assert models.user == "ollama"
    assert models.group == "ollama"
    assert models.mode == 0o750
    assert host.file(f"{MODELS_DIR}/manifests/registry.ollama.ai/library/qwen2.5vl/7b").exists


def test_install_layout(host):
    binary = host.file("/usr/local/bin/ollama")
    assert binary.user == "root"
    assert binary.mode == 0o755
    assert host.file("/usr/local/lib/ollama/cuda_v12").is_directory
    assert host.file(f"/usr/local/lib/ollama/fake-ollama-{VERSION}.marker").exists
    assert host.file("/usr/local/lib/ollama/.selfhosted.ai_stack.json").contains(f'"version": "{VERSION}"')
    # --no-overwrite-dir: the archive's directory entries do not touch /usr/local itself.
    usr_local = host.file("/usr/local")
    assert (usr_local.user, usr_local.mode) == ("root", 0o755)
    # The copy of the archive is removed once unpacked.
    assert host.check_output("ls -A /var/cache/selfhosted.ai_stack/ollama") == ""


def test_api_reports_the_pinned_version(host, ollama_api):
    assert ollama_api("/api/version")["version"] == VERSION
    assert re.search(rf"\b{re.escape(VERSION)}\b", host.check_output("/usr/local/bin/ollama -v"))


def test_guide_models_listed_with_normalised_names(ollama_api):
    names = {model["name"] for model in ollama_api("/api/tags")["models"]}
    assert names == GUIDE_MODELS


def test_sandbox_exposure_score(host):
    out = host.check_output("systemd-analyze security ollama --no-pager")
    score = float(re.search(r"Overall exposure level for ollama.service: ([0-9.]+)", out).group(1))
    assert score < MAX_EXPOSURE, out


def test_sandbox_settings(host):
    props = host.check_output(
        "systemctl show ollama -p ProtectSystem -p ProtectHome -p PrivateTmp -p NoNewPrivileges "
        "-p PrivateDevices -p ReadWritePaths -p CapabilityBoundingSet -p RestrictAddressFamilies"
    )
    for expected in (
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "PrivateDevices=yes",  # CPU only; GPU units use DevicePolicy=closed + DeviceAllow instead
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ):
        assert expected in props + "\n", props
    assert MODELS_DIR in props


def test_unit_carries_the_ansible_managed_header(host):
    assert host.file("/etc/systemd/system/ollama.service").content_string.startswith("#\n# Ansible managed")
