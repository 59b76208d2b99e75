"""GenEval (Ghosh et al., 2023) with scenewright: render its prompts into its own folder layout,
so its official evaluator scores them unchanged, and score them here by its rules."""
