"""BreachBench detectors: the contract, the view a detector sees, features and built-ins.

The public import path is :mod:`breachbench`, which re-exports the contract. Importing this
package does no work.
"""

__all__: list[str] = []
