"""Open Inference Protocol messages (generated from inference.proto)."""
