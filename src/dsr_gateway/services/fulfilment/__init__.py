"""Fulfilment of approved requests: planning steps, the worker's step runner, the phases, the reads."""
