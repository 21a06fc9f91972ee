"""Errors raised for bad input (never for internal faults), and their common base."""


class BreachBenchError(Exception):
    """Base of every error the project raises for bad input or refused work.

    Its message is one line that names the field or file, the value and what is accepted; the
    command line prints it and exits with status 2. It lives in the lowest layer (the simulator)
    so that the detector contract and the bench derive from the same class.
    """


class SimulationError(BreachBenchError, ValueError):
    """Bad input to the simulator: the message names the field, the value and what is accepted."""


class ScenarioError(SimulationError):
    """A scenario cannot be planned in this world (no actor fits, window outside the span...)."""
