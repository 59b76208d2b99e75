"""The LLM planner: any OpenAI-compatible chat-completions endpoint writes the plan.

The model's answer is text that is only ever parsed as JSON and validated against the plan
schema; nothing in it is executed. Structured output bound to the schema is asked for first;
servers that refuse it get JSON mode, then a plain request. Invalid answers go back to the model
once or twice with the validation errors (a repair round); 429, 5xx, timeouts and dropped
connections are retried with exponential backoff. When everything fails the rules planner
answers instead and the result carries a warning that says so.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import openai
from pydantic import ValidationError

from scenewright.errors import InvalidInputError
from scenewright.planner.parse import check_prompt_text
from scenewright.planner.plan import MAX_COUNT, Plan, PlanResult, describe_errors
from scenewright.planner.repair import repair_plan
from scenewright.planner.rules import plan_with_rules
from scenewright.untrusted import load_json

DEFAULT_MODEL = "gpt-4o-mini"
_MODES = ("json_schema", "json_object", "plain")


@dataclass
class LLMSettings:
    """How to reach the model and how patient to be with it."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else the OpenAI API
    api_key: str | None = None  # default: $OPENAI_API_KEY
    # Seconds per request: a server that accepts and never answers costs timeout x
    # timeout_attempts (60 s), not minutes, before the rules planner takes over.
    timeout: float = 30.0
    attempts: int = 4  # tries per request on 429 / 5xx / connection errors
    timeout_attempts: int = 2  # tries per request that time out (a hung server rarely recovers)
    backoff: float = 1.0  # first wait in seconds; doubles per retry, with jitter
    max_backoff: float = 20.0
    repair_rounds: int = 2  # times an invalid answer is sent back with its errors
    seed: int = 0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


class _Unusable(Exception):
    """The endpoint cannot give a plan (auth, unknown model, retries spent): fall back."""


@lru_cache(maxsize=1)
def system_prompt() -> str:
    """The planner's instructions, from ``prompts/planner_system.md``."""
    text = resources.files("scenewright.prompts").joinpath("planner_system.md").read_text(encoding="utf-8")
    return text.format(max_count=MAX_COUNT)


@lru_cache(maxsize=1)
def few_shot_examples() -> list[dict[str, Any]]:
    """Request/plan pairs from ``prompts/planner_examples.json``."""
    raw = resources.files("scenewright.prompts").joinpath("planner_examples.json").read_text(encoding="utf-8")
    examples: list[dict[str, Any]] = json.loads(raw)
    return examples


def build_messages(prompt: str) -> list[dict[str, str]]:
    """System prompt, the few-shot pairs as earlier turns, then the request."""
    messages = [{"role": "system", "content": system_prompt()}]
    for example in few_shot_examples():
        messages.append({"role": "user", "content": example["request"]})
        messages.append({"role": "assistant", "content": json.dumps(example["plan"])})
    messages.append({"role": "user", "content": prompt})
    return messages


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer, tolerating code fences and text around one object."""
    stripped = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    if fence:
        stripped = fence.group(1).strip()
    fix = "reply with one JSON object"
    try:
        return load_json(stripped, "the answer", fix)
    except InvalidInputError as error:
        start, end = stripped.find("{"), stripped.rfind("}")
        if error.problem.startswith("not valid JSON") and 0 <= start < end:
            return load_json(stripped[start : end + 1], "the answer", fix)
        raise


def _response_format(mode: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "scene_plan", "schema": Plan.model_json_schema(), "strict": False},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


class LLMPlanner:
    """Plans through an OpenAI-compatible endpoint; see the module doc for the fallbacks."""

    def __init__(self, settings: LLMSettings | None = None, client: openai.OpenAI | None = None) -> None:
        self.settings = settings or LLMSettings()
        self._client = client
        self._mode = 0  # index into _MODES: drops when the server refuses a response format

    def _get_client(self) -> openai.OpenAI | None:
        if self._client is not None:
            return self._client
        s = self.settings
        base_url = s.base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = s.api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None and base_url is None:
            return None
        # Local OpenAI-compatible servers often need no key; the SDK insists on one.
        self._client = openai.OpenAI(
            api_key=api_key or "not-needed", base_url=base_url, timeout=s.timeout, max_retries=0
        )
        return self._client

    def plan(self, prompt: str) -> PlanResult:
        """A validated plan from the model, or from the rules planner with a warning."""
        check_prompt_length(prompt)
        text = " ".join(prompt.split())
        client = self._get_client()
        if client is None:
            reason = "no OPENAI_API_KEY or OPENAI_BASE_URL is set"
            return self._fallback(text, reason)
        try:
            plan, notes = self._ask(client, text)
        except _Unusable as error:
            return self._fallback(text, str(error))
        return PlanResult(plan, f"llm:{self.settings.model}", notes)

    def _fallback(self, prompt: str, reason: str) -> PlanResult:
        result = plan_with_rules(prompt, self.settings.seed)
        result.warnings.insert(0, f"the LLM planner failed ({reason}); used the rules planner instead")
        return result

    def _ask(self, client: openai.OpenAI, prompt: str) -> tuple[Plan, list[str]]:
        messages = build_messages(prompt)
        problems: list[str] = []
        for _round in range(self.settings.repair_rounds + 1):
            answer = self._complete(client, messages)
            try:
                data = extract_json(answer)
                if isinstance(data, dict):
                    data["prompt"] = prompt
                plan, changes = repair_plan(data, prompt, self.settings.seed)
                if plan.objects:
                    return plan, [f"repaired the LLM plan: {c}" for c in changes]
                problems = ["objects: the plan has no objects; list every object the request names"]
            except ValidationError as error:
                problems = describe_errors(error)
            except (ValueError, TypeError) as error:
                problems = [str(error)]
            messages = [
                *messages,
                {"role": "assistant", "content": answer[:8000]},
                {
                    "role": "user",
                    "content": "That answer is not a valid plan:\n- "
                    + "\n- ".join(problems[:20])
                    + "\nReply with the whole corrected JSON object only.",
                },
            ]
        raise _Unusable(f"no valid plan after {self.settings.repair_rounds} repair rounds: {problems[0]}")

    def _complete(self, client: openai.OpenAI, messages: list[dict[str, str]]) -> str:
        """One answer's text, retrying transient failures and stepping down response formats."""
        s = self.settings
        attempt = 0
        timeouts = 0
        while True:
            fmt = _response_format(_MODES[self._mode])
            extra: dict[str, Any] = {} if fmt is None else {"response_format": fmt}
            try:
                response = client.chat.completions.create(
                    model=s.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0,
                    seed=s.seed,
                    **extra,
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if fmt is not None and self._mode < len(_MODES) - 1:
                    self._mode += 1  # the server does not take this response format: step down
                    continue
                raise _Unusable(f"the server refused the request: {_short(error)}") from error
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APITimeoutError,
                openai.APIConnectionError,
            ) as error:
                attempt += 1
                timed_out = isinstance(error, openai.APITimeoutError)
                timeouts += int(timed_out)
                if attempt >= s.attempts or (timed_out and timeouts >= s.timeout_attempts):
                    raise _Unusable(f"{_short(error)} after {attempt} attempts") from error
                s.sleep(self._wait(attempt, error))
                continue
            except openai.APIStatusError as error:
                if error.status_code >= 500:
                    attempt += 1
                    if attempt >= s.attempts:
                        raise _Unusable(f"{_short(error)} after {attempt} attempts") from error
                    s.sleep(self._wait(attempt, error))
                    continue
                raise _Unusable(_short(error)) from error
            except openai.OpenAIError as error:
                raise _Unusable(_short(error)) from error
            choices = getattr(response, "choices", None) or []
            content = choices[0].message.content if choices else None
            if not content:
                refusal = getattr(choices[0].message, "refusal", None) if choices else None
                return str(refusal or "")
            return str(content)

    def _wait(self, attempt: int, error: Exception) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when it is sooner to honour."""
        s = self.settings
        delay = min(s.max_backoff, s.backoff * 2 ** (attempt - 1))
        delay *= 1 + 0.25 * random.Random(s.seed + attempt).random()
        response = getattr(error, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            if header is not None:
                delay = max(delay, min(s.max_backoff, float(header)))
        except ValueError:
            pass
        return delay


def settings_with_timeout(timeout: float | None, **fields: Any) -> LLMSettings:
    """LLM settings with ``--llm-timeout`` checked (positive, finite seconds); one check for
    every face that takes the option."""
    settings = LLMSettings(**fields)
    if timeout is not None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise InvalidInputError(
                "llm-timeout", f"{timeout} is not a positive number of seconds", "use --llm-timeout 30"
            )
        settings.timeout = timeout
    return settings


def check_prompt_length(text: str) -> None:
    """The LLM reads any language and negations, but not more than the rules planner's length
    limit, and no control characters."""
    check_prompt_text(text)


def _short(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    name = type(error).__name__
    return f"{name} (HTTP {status})" if status else name


def plan_with_llm(prompt: str, settings: LLMSettings | None = None) -> PlanResult:
    """Convenience wrapper: one plan from a fresh :class:`LLMPlanner`."""
    return LLMPlanner(settings).plan(prompt)
