"""Nested training state (dicts, lists, tuples, numbers, tensors) as safetensors + JSON.

Optimizer, scheduler and RNG states are trees of plain values and tensors. Storing the
tensors in safetensors and the rest as JSON keeps checkpoints loadable without unpickling.
"""

from __future__ import annotations

from typing import Any

import torch

TENSOR, TUPLE, ITEMS = "__tensor__", "__tuple__", "__items__"


def split(tree: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """``tree`` -> (tensors by key, a JSON-able skeleton that refers to them)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any) -> Any:
        if torch.is_tensor(node):
            key = str(len(tensors))
            tensors[key] = node.detach().to("cpu").contiguous()
            return {TENSOR: key}
        if isinstance(node, tuple):
            return {TUPLE: [walk(v) for v in node]}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            if all(isinstance(k, str) and k not in (TENSOR, TUPLE, ITEMS) for k in node):
                return {k: walk(v) for k, v in node.items()}
            return {ITEMS: [[k, walk(v)] for k, v in node.items()]}  # e.g. int keys
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store a {type(node).__name__} in a checkpoint")

    return tensors, walk(tree)


def join(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """The inverse of ``split``; raises ValueError on a skeleton that does not fit."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            if set(node) == {TENSOR}:
                if node[TENSOR] not in tensors:
                    raise ValueError(f"missing tensor {node[TENSOR]!r}")
                return tensors[node[TENSOR]]
            if set(node) == {TUPLE}:
                return tuple(walk(v) for v in _list(node[TUPLE]))
            if set(node) == {ITEMS}:
                return {_key(pair): walk(pair[1]) for pair in _list(node[ITEMS])}
            return {k: walk(v) for k, v in node.items()}
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise ValueError(f"unexpected {type(node).__name__} in checkpoint")

    return walk(skeleton)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("malformed checkpoint skeleton")  # noqa: TRY004 - join's contract
    return value


def _key(pair: Any) -> Any:
    if not isinstance(pair, list) or len(pair) != 2 or isinstance(pair[0], (list, dict)):
        raise ValueError("malformed checkpoint skeleton")
    return pair[0]
