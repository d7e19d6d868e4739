"""Errors that the command line turns into a message and an exit status.

Every error that can be detected before training starts subclasses ``UsageError``
(exit status 2): bad config keys or types, unknown rules, missing data, broken plugins,
corrupt checkpoints. Problems found while training have their own statuses: 3 diverged,
4 a plugin failed, 5 the run folder cannot be written, 1 anything else.
"""


class BioscaleError(Exception):
    """Base class; ``exit_status`` is what ``bioscale`` exits with."""

    exit_status = 1


class UsageError(BioscaleError):
    """Something the user asked for cannot be done; found before any work starts."""

    exit_status = 2


class ConfigError(UsageError):
    """Unknown config key, bad value type or unknown preset name."""


class PluginError(UsageError):
    """A rule or observer plugin is unknown, duplicated, broken or breaks a hook contract at setup."""


class DataError(UsageError):
    """The requested data set is missing or malformed."""


class CheckpointError(UsageError):
    """A checkpoint is missing, corrupt, or does not match the run it is resumed into."""


class PluginFailure(BioscaleError):
    """A rule or observer raised, or broke a hook contract, while the run trained; the message
    names the plugin, its distribution and version."""

    exit_status = 4


class RuleContractError(PluginFailure):
    """A rule returned something the trainer cannot use (wrong shape, dtype, device, type)."""


class StorageError(BioscaleError):
    """A run folder file cannot be written (disk full, read-only or missing folder)."""

    exit_status = 5


class DivergenceError(BioscaleError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_status = 3


class StopRun(BioscaleError):
    """Raised by an observer to end a run early on purpose (e.g. a sweep's pruner): the run's
    summary gets ``status`` (default ``stopped``) and the reason; nothing is reported as broken."""

    exit_status = 0
    extra: dict  # set by ObserverHooks.epoch_end: the extras of the observers before the one that stopped

    def __init__(self, reason: str, status: str = "stopped"):
        super().__init__(reason)
        self.status = status
