"""SMB2/3 ([MS-SMB2]): `message` (header, compound chains, transforms), one module per command family."""
