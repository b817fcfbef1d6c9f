"""The campaign scheduler's internals; import the public names from ``orchestrator.scheduler``.

``model`` holds the frozen values, ``weights`` the adaptive weighting rule, ``slicing`` how a
campaign's budget becomes jobs, ``fairshare`` how free worker slots are shared between
campaigns. Everything here is a pure function over plain values: no I/O, no clock, no SQL.
"""
