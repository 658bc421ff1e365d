"""predlog stream package."""
