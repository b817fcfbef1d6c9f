"""The trusted side: settings, SQL store, scheduling, triage, reports, API and the CLI."""
