"""The stack an office gets from `selfhosted.ai_stack.site` on a CPU-only server, used the way its
people use it: a browser signs in to Open WebUI through nginx and gets an answer from Ollama (its
test double), Open WebUI's web search goes through SearXNG (installed from the double of its
repository), SearXNG is published behind basic auth, and only nginx faces the network.

The role scenarios test each service's details; this one tests that the site playbook composes
them into a working whole (test_openwebui.py: that a run limited to one service's tag touches only
that service)."""

from __future__ import annotations

import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from playbook_runs import converged_check_diff, run_playbook
from service_checks import assert_system_user_without_sudo

NAME = "ai.office.example"
# nginx's 443 published on the controller's loopback (molecule.yml); the browser maps NAME to it.
PUBLISHED = "127.0.0.1:18443"
ADMIN_EMAIL = "admin@office.example"
ADMIN_PASSWORD = "Stack-Adm1n-S3cret"
SEARCH_USER, SEARCH_PASSWORD = "office", "Stack-Search-S3cret"
CHAT_MODEL = "deepseek-r1:8b-0528-qwen3-q4_K_M"
# Open WebUI, SearXNG, Ollama: each on loopback, as its own user.
SERVICES = {"open-webui": ("openwebui", 8080), "searxng": ("searxng", 8888), "ollama": ("ollama", 11434)}
# What systemd-analyze security may score each unit at most (lower is safer); the README's table.
MAX_EXPOSURE = 2.0
UNITS = ("open-webui", "open-webui-backup", "searxng", "ollama")
# What the browser tests keep for a person to look at (next to the scenario's log).
ARTIFACTS = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache/molecule-logs/stack-artifacts"


def https(path: str, *, auth: tuple[str, str] | None = None, body: dict | None = None, token: str | None = None):
    """(status, body) of a request to nginx as a client on the office network sends it (Host: NAME)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nginx's self-signed certificate; the nginx scenario checks it
    headers = {"Host": NAME}
    if auth:
        headers["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"https://{PUBLISHED}{path}", data=data, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sign_in() -> str:
    status, body = https("/api/v1/auths/signin", body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert status == 200, body
    return json.loads(body)["token"]


# --------------------------------------------------------------------------- the browser


@pytest.fixture(name="browser", scope="module")
def browser_fixture():
    """Debian's chromium, headless, resolving the office's name to nginx's published port."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--ignore-certificate-errors",
        "--window-size=1280,900",
        f"--host-resolver-rules=MAP {NAME}:443 {PUBLISHED}",
        "--no-proxy-server",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_signs_in_through_nginx_and_chats_with_ollama(browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(f"https://{NAME}/auth")
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "input[type=email]"))).send_keys(ADMIN_EMAIL)
    browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(ADMIN_PASSWORD + Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.ID, "chat-input")))
    # A release's first sign-in shows what is new; a person closes it.
    for button in browser.find_elements(By.XPATH, '//button[contains(., "Okay, Let\'s Go!")]'):
        button.click()
    question = f"Which office is this? {int(time.time())}"
    prompt = wait.until(ec.element_to_be_clickable((By.ID, "chat-input")))
    prompt.click()
    prompt.send_keys(question + Keys.ENTER)
    answer = f"ollama-chat-double ({CHAT_MODEL}): {question}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait.until(lambda driver: answer in driver.find_element(By.TAG_NAME, "body").text)
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "chat-failed.png"))
        pytest.fail(f"no answer in the page; it shows:\n{browser.find_element(By.TAG_NAME, 'body').text[-2000:]}")
    assert browser.save_screenshot(str(ARTIFACTS / "chat.png"))


# --------------------------------------------------------------------------- the services together


def test_open_webui_searches_the_web_through_searxng() -> None:
    token = sign_in()
    status, body = https("/api/v1/retrieval/process/web/search", body={"queries": ["office hours"]}, token=token)
    assert status == 200, body
    # The engine double's answers, through SearXNG: what Open WebUI's answers are grounded on.
    assert "searxng-double" in body or "office hours" in body.lower(), body[:2000]


def test_searxng_is_published_behind_basic_auth() -> None:
    path = "/searxng/search?q=office+hours&format=json"
    status, body = https(path)
    assert status == 401, body[:500]
    status, body = https(path, auth=(SEARCH_USER, "wrong"))
    assert status == 401
    status, body = https(path, auth=(SEARCH_USER, SEARCH_PASSWORD))
    assert status == 200, body[:500]
    assert json.loads(body)["results"], body[:500]


def test_the_fleet_report_of_this_office_opens_in_a_browser(host, browser, tmp_path: Path) -> None:
    """selfhosted.ai_stack.fleet_report on this one-host office, as an admin runs it: read-only, every
    gate passes, and the page a person opens shows the host's row with the versions that are running."""
    from selenium.webdriver.common.by import By

    rc, report = run_playbook("selfhosted.ai_stack.fleet_report", {"ai_stack_fleet_report_dir": str(tmp_path)})
    assert rc == 0, report["stats"]
    assert all(stats["changed"] == 0 for name, stats in report["stats"].items() if name != "localhost")
    browser.get((tmp_path / "fleet-report.html").as_uri())
    tables = browser.find_elements(By.CSS_SELECTOR, "table.office")
    assert len(tables) == 1
    headers = [cell.text for cell in tables[0].find_elements(By.CSS_SELECTOR, "thead th")]
    (row,) = tables[0].find_elements(By.CSS_SELECTOR, "tbody tr")
    assert row.get_attribute("data-host") == "ai-stack-stack" and row.get_attribute("class") == "ok"
    cells = dict(zip(headers, (cell.text for cell in row.find_elements(By.TAG_NAME, "td")), strict=True))
    print(cells)
    nginx = host.run("nginx -v").stderr.strip().split("/", 1)[1]
    commit = host.check_output("git -c safe.directory='*' -C /usr/local/searxng/searxng-src rev-parse HEAD")
    assert cells["Open WebUI"] == "0.12.4"
    assert cells["nginx"] == nginx
    assert cells["SearXNG"] == commit[:12]
    assert cells["Python 3.11"].startswith("3.11.2-nopgo-nolto")
    assert CHAT_MODEL in cells["Models"]
    assert cells["Health"].startswith("ok (")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "fleet-report.png"))


def test_only_nginx_faces_the_network(host) -> None:
    outside = set()
    for line in host.check_output("ss -H -tlnp").splitlines():
        address = line.split()[3]
        if not address.startswith(("127.", "[::1]")):
            outside.add((address.rpartition(":")[2], re.findall(r'"([^"]+)"', line)[:1][0] if '"' in line else "?"))
    assert outside == {("80", "nginx"), ("443", "nginx")}, outside


@pytest.mark.parametrize("unit", sorted(SERVICES))
def test_each_service_runs_as_its_own_user_on_loopback(host, unit: str) -> None:
    user, port = SERVICES[unit]
    assert host.service(unit).is_running
    assert_system_user_without_sudo(host, user)
    listeners = [line.split()[3] for line in host.check_output("ss -H -tln").splitlines()]
    assert [address for address in listeners if address.endswith(f":{port}")] == [f"127.0.0.1:{port}"]
    pid = host.check_output(f"systemctl show {unit} -p MainPID --value")
    assert host.check_output(f"stat -c %U /proc/{pid}") == user


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_sandboxed(host, unit: str) -> None:
    line = host.check_output(f"systemd-analyze security {unit}.service --no-pager | tail -1")
    score = float(re.search(r"([0-9.]+)", line.split(":", 1)[1]).group(1))
    print(f"{unit}.service exposure {score}")
    assert score <= MAX_EXPOSURE, line


def test_gpus_are_detected_once_per_run() -> None:
    """The preflight runs nvidia_cuda's detection once; nvidia_cuda and ollama use the facts it
    publishes instead of asking again with rules of their own (reboot.yml asks again after a reboot)."""
    rc, report = converged_check_diff()
    assert rc == 0
    detections = [
        f"{play['play']['name']}: {task['task']['name']}"
        for play in report["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("action") == "selfhosted.ai_stack.nvidia_gpu_info" and not result.get("skipped")
    ]
    assert len(detections) == 1 and detections[0].startswith("Preflight"), detections


def test_facts_are_gathered_once_per_run() -> None:
    """The Preflight play gathers the facts; the service plays reuse them (each gathering costs a few
    seconds per host and play, on every run and every tag run)."""
    rc, report = converged_check_diff()
    assert rc == 0
    gathered = [
        play["play"]["name"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"] == "Gathering Facts" and not all(r.get("skipped") for r in task["hosts"].values())
    ]
    assert gathered and gathered[0].startswith("Preflight"), gathered
    assert len(gathered) == 1, gathered
