"""Configuration that would fail on the first question: refused at start-up instead."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from apps.answering.profiles import PROFILES
from apps.answering.prompts import _TEMPLATE_OVERHEAD_TOKENS, MIN_PROMPT_TOKENS


@register(Tags.compatibility)
def check_answer_budget(app_configs=None, **kwargs):
    errors = []
    room = settings.LLM_CONTEXT_TOKENS - settings.LLM_MAX_TOKENS - _TEMPLATE_OVERHEAD_TOKENS
    if room < MIN_PROMPT_TOKENS:
        errors.append(Error(
            f"LLM_MAX_TOKENS={settings.LLM_MAX_TOKENS} leaves {room} of LLM_CONTEXT_TOKENS="
            f"{settings.LLM_CONTEXT_TOKENS} tokens for the prompt; at least {MIN_PROMPT_TOKENS} are needed.",
            hint="Lower LLM_MAX_TOKENS or serve the model with a larger --max-model-len.",
            id="rag.E030",
        ))
    profile = (settings.LLM_PROMPT_PROFILE or "").strip().lower()
    if profile and profile not in PROFILES:
        errors.append(Error(f"LLM_PROMPT_PROFILE={settings.LLM_PROMPT_PROFILE!r} is not one of {sorted(PROFILES)}.",
                            id="rag.E031"))
    return errors
