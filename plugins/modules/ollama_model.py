#!/usr/bin/python
#
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_model
short_description: Pull or remove models on an Ollama server
version_added: 0.1.0
description:
  - Makes sure a model is present in (pulled into) or absent from an Ollama server, through the Ollama HTTP API.
  - Presence is checked with C(GET /api/tags) first, so a model that is already there is never pulled again and the
    task reports no change.
  - A pull follows Ollama's streamed progress (C(POST /api/pull)) until Ollama reports success. Interrupted pulls are
    retried; Ollama resumes partial downloads by itself.
author:
  - selfhosted.ai_stack maintainers (@selfhosted)
options:
  name:
    description:
      - Model reference in Ollama's form C([host/][namespace/]model[:tag]), for example C(qwen2.5vl:7b),
        C(snowflake-arctic-embed2) or C(hf.co/org/repo:Q4_K_M).
      - A missing tag means C(latest). The notes below describe how names are compared.
    type: str
    required: true
    aliases: [model]
  state:
    description:
      - V(present) pulls the model when the server does not have it yet.
      - V(absent) deletes the model when the server has it.
      - There is deliberately no C(latest)/C(update) state. Pulling a model that already exists contacts the
        registry again and may replace it with a newer build; run C(ollama pull) explicitly when you want that.
    type: str
    choices: [present, absent]
    default: present
  host:
    description:
      - Ollama server, same syntax as E(OLLAMA_HOST).
      - V(127.0.0.1:11434) or V(0.0.0.0) without a scheme means C(http) and port C(11434).
      - As with E(OLLAMA_HOST), an explicit V(http://name) without a port means port 80 (V(https://name) port 443).
    type: str
    default: http://127.0.0.1:11434
  insecure:
    description:
      - Passed to Ollama's pull API; allows pulling from a registry over plain HTTP or with an untrusted certificate.
      - This is about the registry Ollama downloads from, not about the connection to O(host)
        (see O(validate_certs) for that).
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the connection and for each read from Ollama, not for the whole pull.
      - A multi-gigabyte pull streams progress lines continuously, so this only has to cover the longest silence,
        for example while Ollama verifies a large blob.
    type: int
    default: 600
  retries:
    description:
      - How many times an interrupted pull is retried after the first attempt.
      - Retried are timeouts, refused or reset connections, and progress streams that end without success.
        Errors reported by Ollama itself (unknown model, registry errors) fail at once.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds to wait between pull attempts.
    type: int
    default: 5
  validate_certs:
    description:
      - Verify the TLS certificate of O(host) when it uses C(https).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying the target.
  diff_mode:
    support: full
    description: Returns whether the model is present before and after the task when in diff mode.
  idempotent:
    support: full
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
notes:
  - >-
    Names are normalised like Ollama does before they are compared: C(registry.ollama.ai/) and C(library/) are
    dropped, C(:latest) is added when the last path segment has no tag (so C(host:5000/ns/model) has a port, not a
    tag), and the comparison ignores case. C(llama3.2), C(Llama3.2) and C(registry.ollama.ai/library/llama3.2:latest)
    are the same model; C(hf.co/org/repo:Q4_K_M) keeps its host.
  - >-
    Ollama answers a pull with HTTP 200 before it knows whether the pull will work, and reports failures as an
    C(error) line in the middle of the progress stream. The module checks every line and fails with Ollama's message.
  - >-
    Connections to loopback addresses never use a proxy. For other hosts the usual E(http_proxy), E(https_proxy) and
    E(no_proxy) environment variables apply.
  - The model download itself is done by the Ollama server, which needs access to the registry.
seealso:
  - name: Ollama API reference
    description: The endpoints this module uses.
    link: https://github.com/ollama/ollama/blob/main/docs/api.md
"""

EXAMPLES = r"""
- name: Pull the models the guide uses
  selfhosted.ai_stack.ollama_model:
    name: "{{ item }}"
    state: present
  loop:
    - deepseek-r1:8b-0528-qwen3-q4_K_M
    - qwen2.5vl:7b
    - snowflake-arctic-embed2
  loop_control:
    label: "{{ item }}"

- name: Pull from a remote Ollama over a slow link, with more patience
  selfhosted.ai_stack.ollama_model:
    name: qwen2.5vl:7b
    host: https://gpu01.example.internal:11434
    timeout: 1800
    retries: 5
    retry_delay: 30

- name: Remove a model that is no longer wanted
  selfhosted.ai_stack.ollama_model:
    name: llama3.2
    state: absent

- name: Compare wanted models with what Ollama lists, using the same name rules
  ansible.builtin.debug:
    msg: "{{ ollama_models | map('selfhosted.ai_stack.ollama_model_ref', casefold=true) | list }}"
  vars:
    ollama_models:
      - snowflake-arctic-embed2
      - registry.ollama.ai/library/qwen2.5vl:7b
"""

RETURN = r"""
name:
  description: The model name as Ollama lists it (normalised).
  returned: always
  type: str
  sample: snowflake-arctic-embed2:latest
digest:
  description:
    - Digest of the model's manifest, from C(/api/tags) at the end of the task.
    - V(null) when the server does not have the model (in check mode nothing is pulled or deleted, so this
      describes the model as it is now).
  returned: always
  type: str
  sample: 5de93a84837d0ff00da872e90830df5d973f616cbf1e5c198731ab19dd7b776b
size:
  description:
    - Size of the model on disk in bytes, from C(/api/tags) at the end of the task.
    - V(null) when the server does not have the model (check mode as for RV(digest)).
  returned: always
  type: int
  sample: 1160296718
attempts:
  description: Number of pull requests sent; V(0) when nothing was pulled.
  returned: always
  type: int
  sample: 1
diff:
  description: Presence of the model before and after the task.
  returned: when diff mode is enabled
  type: dict
  sample:
    before:
      name: qwen2.5vl:7b
      present: false
    after:
      name: qwen2.5vl:7b
      present: true
"""

import time
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._ollama_api import (
    OllamaClient,
    OllamaError,
    OllamaNotFoundError,
    OllamaTransientError,
    normalize_model_name,
    ollama_base_url,
)

ARGUMENT_SPEC: dict[str, Any] = dict(
    name=dict(type="str", required=True, aliases=["model"]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    host=dict(type="str", default="http://127.0.0.1:11434"),
    insecure=dict(type="bool", default=False),
    timeout=dict(type="int", default=600),
    retries=dict(type="int", default=3),
    retry_delay=dict(type="int", default=5),
    validate_certs=dict(type="bool", default=True),
)


def _validate(module: AnsibleModule) -> None:
    if module.params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1, got {module.params['timeout']}")
    for option in ("retries", "retry_delay"):
        if module.params[option] < 0:
            module.fail_json(msg=f"{option} must not be negative, got {module.params[option]}")


def _facts(entry: dict[str, Any] | None) -> dict[str, Any]:
    """digest/size as returned to the user; None when the model is not on the server."""
    if entry is None:
        return {"digest": None, "size": None}
    return {"digest": entry.get("digest"), "size": entry.get("size")}


def _pull(module: AnsibleModule, client: OllamaClient, name: str, result: dict[str, Any]) -> None:
    """Pull with retries on interruptions; result["attempts"] counts the requests sent."""
    retries = module.params["retries"]
    while True:
        result["attempts"] += 1
        try:
            client.pull(name, insecure=module.params["insecure"])
            return
        except OllamaTransientError as exc:
            if result["attempts"] > retries:
                raise OllamaTransientError(f"{exc} (gave up after {result['attempts']} attempts)") from exc
            # Ollama keeps the partial blobs, so the next attempt continues where this one stopped.
            module.warn(
                f"pull of '{name}' interrupted (attempt {result['attempts']} of {retries + 1}): {exc}; "
                f"retrying in {module.params['retry_delay']}s"
            )
            time.sleep(module.params["retry_delay"])


def _fail(module: AnsibleModule, msg: str, result: dict[str, Any], in_except: bool = True) -> None:
    # Nothing was pulled or deleted when we fail, so do not claim a change.
    details = {"exception": traceback.format_exc()} if in_except else {}
    module.fail_json(msg=msg, **details, **dict(result, changed=False))


def _ensure_present(module: AnsibleModule, client: OllamaClient, name: str, result: dict[str, Any]) -> None:
    try:
        _pull(module, client, name, result)
        entry = client.find_model(name)
    except OllamaError as exc:
        _fail(module, f"failed to pull model '{name}' from {client.base_url}: {exc}", result)
    if entry is None:
        # Ollama said "success" but does not list the model: never report a pull that did not stick.
        _fail(
            module,
            f"failed to pull model '{name}' from {client.base_url}: pull succeeded but /api/tags does not list it",
            result,
            in_except=False,
        )
    result.update(_facts(entry))


def _ensure_absent(module: AnsibleModule, client: OllamaClient, name: str, result: dict[str, Any]) -> None:
    try:
        client.delete(name)
    except OllamaNotFoundError:
        # Someone else removed it between our check and the delete: the goal is met, nothing changed here.
        result["changed"] = False
        if "diff" in result:
            result["diff"]["before"]["present"] = False
    except OllamaError as exc:
        _fail(module, f"failed to delete model '{name}' from {client.base_url}: {exc}", result)


def run_module(module: AnsibleModule) -> None:
    _validate(module)
    params = module.params
    try:
        name = normalize_model_name(params["name"])
        base_url = ollama_base_url(params["host"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    client = OllamaClient(base_url, timeout=params["timeout"], validate_certs=params["validate_certs"])

    try:
        current = client.find_model(name)
    except OllamaError as exc:
        module.fail_json(msg=f"failed to list models on {base_url}: {exc}", exception=traceback.format_exc())

    want_present = params["state"] == "present"
    result: dict[str, Any] = {"changed": (current is not None) != want_present, "name": name, "attempts": 0}
    result.update(_facts(current))
    if module._diff:
        result["diff"] = {
            "before": {"name": name, "present": current is not None},
            "after": {"name": name, "present": want_present},
        }
    if result["changed"] and not module.check_mode:
        if want_present:
            _ensure_present(module, client, name, result)
        else:
            _ensure_absent(module, client, name, result)
            result.update(_facts(None))
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
