"""What a harness is: discovery, target configuration, engines' pure parts, crash signatures.

Imports nothing from ``workers`` or ``orchestrator``.
"""
