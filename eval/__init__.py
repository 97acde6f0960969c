"""The evaluation suite: question sets -> retrieve/answer (through backend) -> metrics -> report.

Import its parts by name (``from eval.metrics import ...``); ``import eval`` would hide Python's built-in.
"""
