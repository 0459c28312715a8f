"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class DeepMFError(Exception):
    """A problem with the user's input (file, flag, id), reported without a traceback."""


class DataError(DeepMFError, ValueError):
    """A data file is missing, malformed or inconsistent."""


class ConfigError(DeepMFError, ValueError):
    """A flag or configuration value is unknown or out of range."""
