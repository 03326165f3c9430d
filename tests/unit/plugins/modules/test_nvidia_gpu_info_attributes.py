# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nvidia_gpu_info declares only what it does: it is read-only and returns no diff, so it must not
claim diff mode support (test_nvidia_gpu_info.py checks that diff runs return no changes)."""

from __future__ import annotations

import yaml

from ansible_collections.selfhosted.ai_stack.plugins.modules import nvidia_gpu_info


def test_attributes_match_what_the_module_returns() -> None:
    attributes = yaml.safe_load(nvidia_gpu_info.DOCUMENTATION)["attributes"]
    assert attributes["diff_mode"]["support"] == "none"
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["idempotent"]["support"] == "full"
    # Nothing in the module builds a diff.
    assert "diff" not in nvidia_gpu_info.run_module.__code__.co_names
    assert "diff:" not in nvidia_gpu_info.RETURN
