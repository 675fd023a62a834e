"""The export package's exceptions: every step raises one of these, the CLI prints one line."""
from runtime.errors import Failure, UserError


class ExportError(UserError):
    """A step cannot run: missing inputs, a bad option or bad data (exit 2)."""


class ConversionError(Failure):
    """A converter produced a model that breaks the contract (exit 1): not the user's doing."""
