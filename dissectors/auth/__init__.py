"""Authentication tokens in SMB and DCE/RPC: SPNEGO, NTLMSSP, Kerberos AP-REQ, the DER reader."""
