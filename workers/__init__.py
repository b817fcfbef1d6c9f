"""Executing jobs: the job contract, sandbox, workspace, corpus sync, object store and git.

Imports from ``harnesses`` only; never from ``orchestrator``. Workers hold no database
credentials and take plain configuration values, never the settings object.
"""
