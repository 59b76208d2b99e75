"""Prompt files for the LLM planner (system prompts and few-shot examples)."""
