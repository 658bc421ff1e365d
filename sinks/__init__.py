"""predlog sinks package."""
