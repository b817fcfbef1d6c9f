"""The CLI's exit codes (DESIGN.md, "CLI contract")."""

EXIT_OK = 0  # done, and the gate passes
EXIT_GATE = 1  # the gate fails; for fuzz and crash reproduce: a crash happened
EXIT_USAGE = 2  # bad usage, configuration or input
EXIT_INFRA = 3  # infrastructure failure, or the campaign failed or was cancelled
