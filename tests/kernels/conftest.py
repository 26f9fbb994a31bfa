"""Kernel tests run Triton's interpreter on the CPU: it must be on before triton is imported."""

import os

os.environ["TRITON_INTERPRET"] = "1"
