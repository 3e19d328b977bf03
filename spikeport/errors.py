"""User-facing errors.

A :class:`SpikeportError` is a mistake in what the user gave (a file, an option,
a network that does not fit): the command line prints its message as one line
``error: ...`` and exits with status 2. Any other exception is a bug (exit 1).
"""


class SpikeportError(Exception):
    """A user error; the message names the file, object or limit at fault."""


class GraphError(SpikeportError):
    """An invalid network: the message names the population or projection."""


class FileFormatError(SpikeportError):
    """A file that is not a readable spikeport (or model) file."""


class DataError(SpikeportError):
    """A data set that is missing or malformed."""
