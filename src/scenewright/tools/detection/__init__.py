"""Open-vocabulary detection for judging real images: boxes, counts, colours and relations.

On the embedded model the toy world's exact evaluator judges every image; on FLUX or SD3 there is
no such oracle, so objects are found by a detector from ``transformers`` (OWLv2, Grounding DINO,
or Mask2Former on COCO as GenEval uses), their colours named by zero-shot CLIP on each crop, and
the plan's relations read from box centres. Nothing here imports transformers at module level.
"""
