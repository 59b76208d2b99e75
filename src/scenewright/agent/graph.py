"""The LangGraph wiring: plan -> review -> validate -> route -> execute -> verify -> refine -> finish.

Failures leave the main line early for ``finish`` (which keeps the last good image); ``refine``
loops back into ``execute`` a bounded number of times, only when a refine strategy is registered.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from scenewright.agent import nodes
from scenewright.agent.state import AgentState


def _ok_or_finish(next_node: str) -> Any:
    def decide(state: AgentState) -> str:
        return "finish" if state.get("errors") else next_node

    return decide


def build_graph(
    tools: nodes.Toolbox, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any]:
    """Compile the agent's graph with the given resources and checkpointer."""
    graph: StateGraph[Any] = StateGraph(AgentState)

    def plan(state: AgentState) -> dict[str, Any]:
        return nodes.plan_node(state, tools)

    def route(state: AgentState) -> dict[str, Any]:
        return nodes.route_node(state, tools)

    def execute(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        return nodes.execute_node(state, config, tools)

    def verify(state: AgentState) -> dict[str, Any]:
        return nodes.verify_node(state, tools)

    graph.add_node("plan", plan)
    graph.add_node("review", nodes.review_node)
    graph.add_node("validate", nodes.validate_node)
    graph.add_node("route", route)
    graph.add_node("execute", execute)
    graph.add_node("verify", verify)
    graph.add_node("refine", nodes.refine_node)
    graph.add_node("finish", nodes.finish_node)

    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _ok_or_finish("review"), ["review", "finish"])
    graph.add_conditional_edges("review", _ok_or_finish("validate"), ["validate", "finish"])
    graph.add_conditional_edges("validate", _ok_or_finish("route"), ["route", "finish"])
    graph.add_edge("route", "execute")
    graph.add_conditional_edges("execute", _ok_or_finish("verify"), ["verify", "finish"])
    graph.add_conditional_edges(
        "verify", lambda s: "refine" if nodes.wants_refine(s, tools) else "finish", ["refine", "finish"]
    )
    graph.add_edge("refine", "execute")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)
