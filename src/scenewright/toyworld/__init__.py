"""The toy world of coloured shapes the embedded model is trained on and judged in."""
