"""LangGraph agent: plan, route, execute, verify, refine (see the agent issue)."""
