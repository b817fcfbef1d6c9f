"""The SQL store: schema, migrations and the trusted side's reads and writes."""
