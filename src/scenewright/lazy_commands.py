"""Sub-commands whose modules load only when chosen, so ``scenewright --help`` stays instant.

Each command's module may pull in torch, diffusers or Gradio. The top-level parser holds a
placeholder per command (its name and one-line help, enough for ``--help``); when argparse picks a
command, the placeholder is swapped for the parser its module registers, then parsing goes on.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

Register = Callable[[Any], None]

if TYPE_CHECKING:
    _Base = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _Base = argparse._SubParsersAction


def from_module(module: str, function: str = "register") -> Register:
    """A loader that imports ``module`` and calls its ``function(subparsers)``."""

    def load(subparsers: Any) -> None:
        getattr(importlib.import_module(module), function)(subparsers)

    return load


class LazySubParsersAction(_Base):
    """``add_subparsers(action=LazySubParsersAction)``: adds :meth:`add_lazy` and :meth:`load`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaders: dict[str, Register] = {}

    def add_lazy(self, name: str, help: str, loader: Register) -> None:
        """A placeholder for ``name``; ``loader(self)`` registers the real parser when needed."""
        self.add_parser(name, help=help)
        self._loaders[name] = loader

    def load(self, name: str) -> argparse.ArgumentParser:
        """The real parser of ``name`` (registered now if it was still a placeholder)."""
        loader = self._loaders.pop(name, None)
        if loader is not None:
            index = next(i for i, a in enumerate(self._choices_actions) if a.dest == name)
            del self._choices_actions[index]
            del self._name_parser_map[name]
            loader(self)
            moved = next(i for i, a in enumerate(self._choices_actions) if a.dest == name)
            self._choices_actions.insert(index, self._choices_actions.pop(moved))
        parser: argparse.ArgumentParser = self._name_parser_map[name]
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, list | tuple) and values and values[0] in self._loaders:
            self.load(values[0])
        super().__call__(parser, namespace, values, option_string)
