"""Errors a user can act on. The CLI prints each as one line and exits 1."""


class RnnlabError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(RnnlabError, ValueError):
    """A hyperparameter or flag value that cannot work."""


class CorpusError(RnnlabError):
    """A corpus that cannot be read, or is too short."""


class CheckpointError(RnnlabError):
    """A run directory that cannot be loaded."""


class TrainingDiverged(RnnlabError):
    """The loss became NaN or infinite."""
