"""Privacy switches applied at the start of every process (web, worker, vLLM, commands, tests).

Every library we ship that can phone home, download a model or report usage is switched off
here, in code, before that library is imported. The values are forced, not defaulted: an
operator's stray ``HF_HUB_OFFLINE=0`` must not re-open the door.
"""

from __future__ import annotations

import os

# name -> value. Sources: huggingface_hub/constants.py, transformers/utils/hub.py,
# unstructured/utils.py (scarf analytics), vllm/envs.py and vllm/usage/usage_lib.py,
# spaCy/weasel and gradio-style DO_NOT_TRACK conventions.
OFFLINE_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}


def apply_offline_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> None:
    """Force the offline/no-telemetry variables into ``environ`` (default: this process)."""
    target = os.environ if environ is None else environ
    for name, value in OFFLINE_ENVIRONMENT.items():
        target[name] = value


def offline_environment_status() -> dict[str, bool]:
    """Which switches are in force in this process (for the attestation report and tests)."""
    return {name: os.environ.get(name) == value for name, value in OFFLINE_ENVIRONMENT.items()}
