"""Stitch: objects generated apart, cut out, pasted into their boxes, then finished together.

Phase 1 (the first ``object_fraction`` of the steps) runs one of two object passes:
- ``box`` (the paper's): every instance's prompt bound to its box with no base blend (tokens
  inside a box see only that box and its prompt; tokens outside see only each other and the
  background prompt), K isolated object passes carried in one latent, beside a background pass.
  At the switch step each instance's tokens are cut out by its prompt's attention mass (tokens
  holding ``keep_mass`` of it inside its box, grown by one token) and pasted into the background
  latent. The attention is read from one (block, head): the one whose maps agree best, inside the
  boxes, with ConceptAttention's maps of the same pass (FLUX-class models) or with the mean over
  all heads (others), so no head is hard-coded per model. Boxes that share a token never share a
  latent: the instances are split into groups of disjoint boxes, one object pass each (the paper
  runs one pass per instance; one latent per group is the same cost-free whenever boxes are
  apart). With ``seam_fraction`` > 0 (our option) the tokens two boxes share, and the
  border between two touching boxes of one object, take the
  background at the switch and follow the background's path for that share of the steps, so that
  two neighbours do not grow into one shape; ``canvas_fraction`` does the same for every token
  outside the boxes, so the finish cannot draw an object in a gap. With ``borrow_share`` > 0 a
  box left empty at the switch borrows the draft of a sibling box of the same object.
- ``free`` (ours, :mod:`scenewright.executor.stitch.free_pass`): each object drawn alone on the whole
  canvas, found by its footprint and moved into its boxes; for token grids too coarse for a box
  to hold a whole object. ``auto`` picks by grid size.
Phase 2 completes the image from there, unmasked, with the global prompt (or, on a model that
never learned layout words, the plan's objects named with their counts: ``finish_prompt``); with
``hold_fraction`` > 0 (our option) its first steps still bind each object to its prompt with
regional attention.
Modules: ``render`` (the two phases), ``box_pass`` and ``free_pass`` (phase 1), ``borrow`` (empty
boxes filled from their siblings), ``hold`` (what the finish keeps on the background's path).
Cost, box pass: one run plus the background pass and the longer text sequence during phase 1 (1.18x
vanilla for 2 to 6 objects on the tiny model before the free pass existed). Free pass: one row per
distinct object and one for the background during phase 1, on a coarser schedule that reaches the
switch in 6 steps, plus redraws; measured
in docs/benchmarks.md.
"""

from scenewright.executor.stitch.render import OPTIONS, render_stitch

__all__ = ["OPTIONS", "render_stitch"]
