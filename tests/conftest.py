"""The suite runs the decoders the settings choose, as the drivers do: PREDLOG_NATIVE=0 runs
it on the Python decoders only."""

from agents.settings import Settings
from stream.decode import native

native.set_enabled(Settings().native)
