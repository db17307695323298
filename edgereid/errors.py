"""One base error for everything a user can get wrong.

The CLI turns any EdgereidError into a one-line message and a non-zero exit code,
so each stage only has to raise with a message that names the thing and what was
expected.
"""


class EdgereidError(Exception):
    """Bad input or an impossible request; the message is shown to the user as is."""


class DatasetError(EdgereidError):
    """A dataset folder or spec that does not match the expected layout."""


class BoardError(EdgereidError):
    """A board file that is missing, malformed, or fails the schema."""


class CheckpointError(EdgereidError):
    """A checkpoint that is missing, corrupt, or of the wrong kind."""


class ModelError(EdgereidError):
    """An unknown model name or invalid model arguments."""


class ExportError(EdgereidError):
    """A model that cannot be exported as asked (e.g. a float op left in an int8 graph)."""


class FirmwareError(EdgereidError):
    """A .tflite the firmware cannot read or lower, or a model that does not fit a board."""


class HilError(EdgereidError):
    """A hardware-in-the-loop run that could not talk to its target."""


class LatencyError(EdgereidError):
    """A latency table, profile or prediction that cannot be made as asked."""


class TFLiteError(EdgereidError):
    """A .tflite file that is missing, damaged, or not what the caller can read."""
