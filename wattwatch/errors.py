"""The project's errors: one base class and small subclasses; third-party errors are translated."""


class WattwatchError(Exception):
    """Base class of every error wattwatch raises on purpose."""


class ConfigError(WattwatchError):
    """A setting is missing or invalid; the message names the setting."""


class StackError(WattwatchError):
    """The embedded database or broker could not be started, stopped or reached."""


class StorageError(WattwatchError):
    """The database refused an operation or is missing something wattwatch needs."""


class TransientStorageError(StorageError):
    """The database is unreachable or busy for now; the same operation may succeed later."""


class PayloadError(WattwatchError):
    """A device payload cannot be turned into readings; the message is the dead-letter reason."""
