"""Plans from natural language: the pydantic schema, the rules planner and the LLM planner."""

from scenewright.planner.plan import MAX_COUNT, Plan, PlanObject, PlanRelation

__all__ = ["MAX_COUNT", "Plan", "PlanObject", "PlanRelation"]
