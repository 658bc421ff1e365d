"""predlog agents package."""
