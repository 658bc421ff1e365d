"""Decoders: wire formats → `stream.events.PredictionEvent` (or `DeadLetter`)."""
