"""Errors raised by the simulator for bad input (never for internal faults)."""


class SimulationError(ValueError):
    """Bad input to the simulator: the message names the field, the value and what is accepted."""


class ScenarioError(SimulationError):
    """A scenario cannot be planned in this world (no actor fits, window outside the span...)."""
