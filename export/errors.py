"""The export package's exception: every step raises a subclass, the CLI prints one line."""
from runtime.errors import UserError


class ExportError(UserError):
    """A step cannot run: missing inputs, a bad option, or a failed conversion."""
