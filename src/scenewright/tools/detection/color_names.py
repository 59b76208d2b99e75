"""The ten colours GenEval names, without torch: its metadata is checked against them before the
CLIP that tells them apart (``color``) loads."""

from __future__ import annotations

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
