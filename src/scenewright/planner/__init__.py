"""Plans from natural language: the pydantic schema, the rules planner and the LLM planner.

Modules, one job each: ``plan`` (schema), ``lexicon`` (word lists), ``parse`` (rules parser),
``layout`` (box placement), ``geometry`` (what relations mean for boxes), ``repair`` (fixing raw
plans), ``rules`` (offline planner), ``llm`` (OpenAI-compatible planner), ``count_layout``
(NUMINA instance layouts from attention), ``command`` (the ``plan`` subcommand), ``unknown_words``
(warnings for object names a closed-vocabulary backend cannot draw).
"""

from scenewright.planner.plan import (
    MAX_COUNT,
    MAX_OBJECTS,
    MAX_PROMPT_CHARS,
    Plan,
    PlanObject,
    PlanRelation,
    PlanResult,
)

__all__ = ["MAX_COUNT", "MAX_OBJECTS", "MAX_PROMPT_CHARS", "Plan", "PlanObject", "PlanRelation", "PlanResult"]
