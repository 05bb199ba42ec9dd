"""Connection-oriented DCE/RPC over SMB named pipes ([C706] chapter 12, [MS-RPCE] 2.2.2).

`pdu.parse_pdu` reads one PDU; `stream.RpcStream` cuts one direction of a pipe
into PDUs and puts fragmented calls together. Records are in `records`,
spec-named constants in `constants`.
"""

from dissectors.dcerpc.pdu import parse_header, parse_pdu
from dissectors.dcerpc.stream import RpcStream

__all__ = ["RpcStream", "parse_header", "parse_pdu"]
