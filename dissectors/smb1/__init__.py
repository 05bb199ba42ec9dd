"""SMB1 ([MS-CIFS], [MS-SMB]): `message` (header, AndX chains), one module per command family."""
