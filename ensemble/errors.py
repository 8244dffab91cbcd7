"""Errors a user can act on. Each message names the bad value and what to do instead."""


class EnsembleError(ValueError):
    """Base class: bad input, reported to the user as one clear line."""


class ConfigError(EnsembleError):
    """A preset, flag or option is invalid."""


class LoadError(EnsembleError):
    """A member could not be found or loaded."""


class PromptError(EnsembleError):
    """The prompt is empty or does not fit a member's context."""
