"""State and side effects: capture, flows, per-connection sessions, reports and the CLI."""
