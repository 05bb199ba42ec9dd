"""Who logs in, how, and to which share: sessions and tree connects of one connection.

Requests are paired with their responses (SMB2 by MessageId, SMB1 by PID and
MID) through a capped table; each session is followed across the legs of its
SESSION_SETUP exchange until the server gives its final status. Passwords and
NTLM responses never reach this module: the dissectors keep only lengths.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from dissectors.auth.kerberos import WEAK_ENCRYPTION_TYPES, EncryptionType
from dissectors.auth.ntlmssp import NtlmNegotiateFlags
from dissectors.auth.spnego import mechanism_name
from dissectors.constants import Smb1SecurityMode, flag_names, nt_status_name
from dissectors.records import (
    AnomalyKind,
    KerberosApReq,
    NtlmsspAuthenticate,
    NtlmsspChallenge,
    NtlmsspNegotiate,
    Smb1Header,
    Smb1SessionSetupRequest,
    Smb1SessionSetupResponse,
    Smb1TreeConnectRequest,
    Smb1TreeConnectResponse,
    Smb2Header,
    Smb2SessionSetupRequest,
    Smb2SessionSetupResponse,
    Smb2TreeConnectRequest,
    Smb2TreeConnectResponse,
    SpnegoToken,
)

STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
# [MS-SMB2] 2.2.6 SessionFlags.
SMB2_SESSION_FLAG_IS_GUEST = 0x0001
SMB2_SESSION_FLAG_IS_NULL = 0x0002
SMB2_SESSION_FLAG_ENCRYPT_DATA = 0x0004
SMB2_SESSION_FLAG_BINDING = 0x01  # request Flags
SMB2_SHARE_TYPES = {1: "disk", 2: "pipe", 3: "print"}
# RFC 4178 4.2.2 negState.
NEG_STATE_NAMES = {0: "accept-completed", 1: "accept-incomplete", 2: "reject", 3: "request-mic"}
# [MS-CIFS] 2.2.4.55.2 Service strings of a TREE_CONNECT_ANDX response.
SMB1_SERVICE_TYPES = {"A:": "disk", "IPC": "pipe", "LPT1:": "print", "COMM": "comm"}

# Per connection; Windows allows a few sessions per connection and a few hundred requests in flight.
MAX_PENDING_REQUESTS = 1024
MAX_SESSIONS = 64
MAX_TREES = 256


def _session_flag_names(flags: int) -> list[str]:
    names = []
    for bit, name in ((SMB2_SESSION_FLAG_IS_GUEST, "is_guest"), (SMB2_SESSION_FLAG_IS_NULL, "is_null"),
                      (SMB2_SESSION_FLAG_ENCRYPT_DATA, "encrypt_data")):  # fmt: skip
        if flags & bit:
            names.append(name)
    return names


def _kerberos(ap_req: KerberosApReq) -> dict[str, Any]:
    try:
        etype_name = EncryptionType(ap_req.ticket_etype).name
    except ValueError:
        etype_name = f"unknown-{ap_req.ticket_etype}"
    return {
        "realm": ap_req.realm,
        "service_principal": ap_req.service_principal,
        "ticket_etype": etype_name,
        "weak_cipher": ap_req.ticket_etype in WEAK_ENCRYPTION_TYPES,
        # The client's principal is inside the encrypted authenticator.
        "client_principal": "not visible: encrypted in the authenticator",
    }


class AuthenticationTracker:
    """Sessions, trees and the names and versions each side announced, for one connection."""

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[int, ...], dict[str, Any]] = OrderedDict()
        self.sessions: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.trees: list[dict[str, Any]] = []
        self.client_hints: dict[str, str] = {}
        self.server_hints: dict[str, str] = {}
        self.pending_dropped = 0
        self.sessions_dropped = 0
        self.trees_dropped = 0
        self.results_dropped = 0
        # Final SESSION_SETUP outcomes (packet time, status, the session) not yet handed on; the session's
        # auth kind is settled by the time the pipeline reads them (after the whole response). The pipeline
        # drains them after each delivery of reassembled bytes; past MAX_PENDING_REQUESTS in one delivery
        # an outcome is left out (the session itself still shows it) and counted in `results_dropped`.
        self.results: list[tuple[float, int, dict[str, Any]]] = []

    # --- shared ----------------------------------------------------------------------------

    def _remember(self, key: tuple[int, ...], facts: dict[str, Any]) -> None:
        if len(self._pending) >= MAX_PENDING_REQUESTS:
            self._pending.popitem(last=False)
            self.pending_dropped += 1
        self._pending[key] = facts

    def _session(self, session_id: int, ts: float) -> dict[str, Any] | None:
        session = self.sessions.get(session_id)
        if session is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions_dropped += 1
                return None
            session = self.sessions[session_id] = {
                "session_id": f"0x{session_id:x}",
                "first_seen": ts,
                "status": None,
                "user": None,
                "domain": None,
                "workstation": None,
                "auth": "unknown",
                "mechanisms": [],
                "legs": 0,
                "session_flags": [],
                "kerberos": None,
            }
        return session

    def _token_facts(self, token: SpnegoToken | None, facts: dict[str, Any]) -> None:
        """What a client's security token says about the user, in `facts`."""
        if token is None:
            return
        if token.mech_types:
            facts["mechanisms"] = [mechanism_name(oid) for oid in token.mech_types]
        ntlm = token.ntlmssp
        if isinstance(ntlm, NtlmsspAuthenticate):
            facts.update(user=ntlm.user, domain=ntlm.domain, workstation=ntlm.workstation, auth=ntlm.auth)
            facts["ntlm_flags"] = flag_names(NtlmNegotiateFlags, ntlm.flags)
            if ntlm.version:
                self.client_hints["ntlm_version"] = str(ntlm.version)
            if ntlm.workstation:
                self.client_hints["workstation"] = ntlm.workstation
        elif isinstance(ntlm, NtlmsspNegotiate) and ntlm.version:
            self.client_hints["ntlm_version"] = str(ntlm.version)
        if token.kerberos is not None:
            facts.update(auth="kerberos", user="", kerberos=_kerberos(token.kerberos))

    def _server_token(self, token: SpnegoToken | None, session: dict[str, Any] | None = None) -> None:
        if token is not None and token.neg_state is not None and session is not None:
            session["spnego_result"] = NEG_STATE_NAMES.get(token.neg_state, f"unknown-{token.neg_state}")
        if token is None or not isinstance(token.ntlmssp, NtlmsspChallenge):
            return
        challenge = token.ntlmssp
        if challenge.version:
            self.server_hints["ntlm_version"] = str(challenge.version)
        names = {
            "nb_computer_name": challenge.nb_computer_name,
            "nb_domain_name": challenge.nb_domain_name,
            "dns_computer_name": challenge.dns_computer_name,
            "dns_domain_name": challenge.dns_domain_name,
        }
        self.server_hints.update({key: value for key, value in names.items() if value})

    def _settle(self, session: dict[str, Any], request: dict[str, Any] | None, status: int, ts: float) -> None:
        session["legs"] += 1
        if request:
            session.update({key: value for key, value in request.items() if key != "kind"})
        if status != STATUS_MORE_PROCESSING_REQUIRED:
            session["status"] = nt_status_name(status)
            if len(self.results) < MAX_PENDING_REQUESTS:
                self.results.append((ts, status, session))
            else:
                self.results_dropped += 1

    # --- SMB2 ------------------------------------------------------------------------------

    def smb2_request(self, header: Smb2Header, body: object) -> None:
        if isinstance(body, Smb2SessionSetupRequest):
            facts: dict[str, Any] = {"kind": "session_setup"}
            if body.flags & SMB2_SESSION_FLAG_BINDING:
                facts["binding"] = True
            if body.previous_session_id:
                facts["previous_session_id"] = f"0x{body.previous_session_id:x}"
            self._token_facts(body.security, facts)
            self._remember((2, header.message_id), facts)
        elif isinstance(body, Smb2TreeConnectRequest):
            self._remember((2, header.message_id), {"kind": "tree", "path": body.path})

    def smb2_response(self, header: Smb2Header, body: object, command_is_session_setup: bool, ts: float) -> None:
        if command_is_session_setup:
            request = self._pending.pop((2, header.message_id), None)
            session = self._session(header.session_id, ts)
            if session is None:
                return
            if isinstance(body, Smb2SessionSetupResponse):
                self._server_token(body.security, session)
                flags = body.session_flags
                session["session_flags"] = _session_flag_names(flags)
                if flags & SMB2_SESSION_FLAG_IS_GUEST:
                    session["guest"] = True
                if flags & SMB2_SESSION_FLAG_IS_NULL:
                    session["null"] = True
            self._settle(session, request, header.status, ts)
            if session.get("guest"):
                session["auth"] = "guest"
            elif session.get("null"):
                session["auth"] = "anonymous"
            return
        request = self._pending.pop((2, header.message_id), None)
        if request is None or request.get("kind") != "tree":
            return
        if len(self.trees) >= MAX_TREES:
            self.trees_dropped += 1
            return
        tree = {
            "path": request["path"],
            "status": nt_status_name(header.status),
            "session_id": f"0x{header.session_id:x}",
        }
        if isinstance(body, Smb2TreeConnectResponse):
            tree["share_type"] = SMB2_SHARE_TYPES.get(body.share_type, f"unknown-{body.share_type}")
            tree["tree_id"] = header.tree_id
        self.trees.append(tree)

    # --- SMB1 ------------------------------------------------------------------------------

    def smb1_request(self, header: Smb1Header, body: object, encrypt_passwords: bool | None) -> None:
        key = (1, header.pid, header.mid, header.command)
        if isinstance(body, Smb1SessionSetupRequest):
            facts: dict[str, Any] = {"kind": "session_setup"}
            if body.native_os:
                self.client_hints["native_os"] = body.native_os
            if body.native_lanman:
                self.client_hints["native_lanman"] = body.native_lanman
            if body.form == "extended":
                self._token_facts(body.security, facts)
            else:
                facts.update(
                    user=body.account,
                    domain=body.primary_domain,
                    workstation=None,
                    auth=_legacy_auth(body, encrypt_passwords),
                )
            self._remember(key, facts)
        elif isinstance(body, Smb1TreeConnectRequest):
            self._remember(key, {"kind": "tree", "path": body.path})

    def smb1_response(self, header: Smb1Header, body: object, ts: float) -> None:
        request = self._pending.pop((1, header.pid, header.mid, header.command), None)
        if request is None and body is None:
            return
        if (request or {}).get("kind") == "tree" or isinstance(body, Smb1TreeConnectResponse):
            if len(self.trees) >= MAX_TREES:
                self.trees_dropped += 1
                return
            tree: dict[str, Any] = {
                "path": (request or {}).get("path"),
                "status": nt_status_name(header.status),
                "session_id": f"0x{header.uid:x}",
            }
            if isinstance(body, Smb1TreeConnectResponse):
                tree["share_type"] = SMB1_SERVICE_TYPES.get(body.service, body.service or "unknown")
                tree["tree_id"] = header.tid
            self.trees.append(tree)
            return
        session = self._session(header.uid, ts)
        if session is None:
            return
        if isinstance(body, Smb1SessionSetupResponse):
            self._server_token(body.security, session)
            if body.native_os:
                self.server_hints["native_os"] = body.native_os
            if body.native_lanman:
                self.server_hints["native_lanman"] = body.native_lanman
            if body.guest:
                session["guest"] = True
        self._settle(session, request, header.status, ts)
        if session.get("guest"):
            session["auth"] = "guest"

    def cap_anomalies(self) -> Counter[AnomalyKind]:
        """How often this connection's caps bit (requests forgotten unanswered, sessions not tracked,
        trees not listed, SESSION_SETUP outcomes not handed on)."""
        counts: Counter[AnomalyKind] = Counter()
        if self.pending_dropped:
            counts[AnomalyKind.PENDING_REQUESTS_FULL] = self.pending_dropped
        if self.sessions_dropped:
            counts[AnomalyKind.SESSIONS_FULL] = self.sessions_dropped
        if self.trees_dropped:
            counts[AnomalyKind.TREES_FULL] = self.trees_dropped
        if self.results_dropped:
            counts[AnomalyKind.SESSION_RESULTS_FULL] = self.results_dropped
        return counts

    def users(self) -> list[str]:
        """`DOMAIN\\user` (or `user`) of each session that was set up, in order, without repeats."""
        names: dict[str, None] = {}
        for session in self.sessions.values():
            if session.get("status") == "STATUS_SUCCESS" and session.get("user"):
                domain = session.get("domain")
                names[f"{domain}\\{session['user']}" if domain else str(session["user"])] = None
        return list(names)

    def describe_sessions(self) -> list[dict[str, Any]]:
        """Each session with the paths of the trees it connected (README: `sessions[].trees`)."""
        paths: dict[str, list[str | None]] = {}
        for tree in self.trees:
            paths.setdefault(tree["session_id"], []).append(tree["path"])
        return [
            {
                **{key: value for key, value in session.items() if key not in ("guest", "null")},
                "trees": paths.get(session["session_id"], []),
            }
            for session in self.sessions.values()
        ]


def _legacy_auth(request: Smb1SessionSetupRequest, encrypt_passwords: bool | None) -> str:
    """[MS-CIFS] 3.2.4.2.4: what the password fields of a non-extended SESSION_SETUP_ANDX carry."""
    oem_length, unicode_length = request.oem_password_length, request.unicode_password_length
    if not request.account and unicode_length == 0 and oem_length <= 1:
        return "anonymous"
    if encrypt_passwords is False and (oem_length or unicode_length):
        return "plaintext"  # the server asked for cleartext passwords ([MS-CIFS] 2.2.4.52.2 SecurityMode)
    if unicode_length > 24:
        return "ntlmv2"
    if unicode_length == 24:
        return "ntlmv1"
    if oem_length == 24:
        return "lm"
    if oem_length or unicode_length:
        return "plaintext"  # neither 24-byte response nor NTLMv2: a password in clear
    return "unknown"


def encrypt_passwords(security_mode: object) -> bool | None:
    """Whether an SMB1 server's NEGOTIATE asked for challenge/response rather than plaintext."""
    if not isinstance(security_mode, int):
        return None
    return bool(security_mode & Smb1SecurityMode.NEGOTIATE_ENCRYPT_PASSWORDS)
