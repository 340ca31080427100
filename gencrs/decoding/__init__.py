"""Trie-constrained decoding: a framework-free core (turn state -> allowed-token mask) and its wrappers."""

from gencrs.decoding.constraint import Phase, TurnConstraint, TurnState

__all__ = ["Phase", "TurnConstraint", "TurnState"]
