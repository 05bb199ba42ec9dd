"""What leaves smbwatch: the inventory, the retirement report, report formats, metrics, events, the exporter."""
