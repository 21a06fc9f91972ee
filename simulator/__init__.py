"""BreachBench simulator: the synthetic company, its logs and the attack scenarios.

The public import path is :mod:`breachbench`; this package holds the generator. Importing it
does no work.
"""

__all__: list[str] = []
