"""Triton kernels for compressed sparse attention, each beside a plain torch reference."""
