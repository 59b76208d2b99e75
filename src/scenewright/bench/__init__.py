"""Benchmarks: the toy-world compositional benchmark and the attention engine's speed."""
