"""Session tracking: pairing, multi-leg setups, result and auth kind, caps."""

from __future__ import annotations

from dissectors.records import (
    AnomalyKind,
    NtlmsspAuthenticate,
    Smb1Header,
    Smb1SessionSetupRequest,
    Smb1SessionSetupResponse,
    Smb2Header,
    Smb2SessionSetupRequest,
    Smb2SessionSetupResponse,
    Smb2TreeConnectRequest,
    Smb2TreeConnectResponse,
    SpnegoToken,
)
from monitor.smb.authentication import MAX_PENDING_REQUESTS, MAX_SESSIONS, MAX_TREES, AuthenticationTracker

MORE = 0xC0000016
LOGON_FAILURE = 0xC000006D


def smb2(command: int, message_id: int, session_id: int = 0, status: int = 0, response: bool = False) -> Smb2Header:
    return Smb2Header(1, status, command, 1, 1 if response else 0, 0, message_id, None, 0, session_id, bytes(16))


def ntlm_auth(user: str, nt_length: int) -> SpnegoToken:
    message = NtlmsspAuthenticate(0x00080000, user, "LAB", "PC1", 24, nt_length, None)
    return SpnegoToken("response", (), None, None, message, None)


def test_two_leg_setup_then_tree() -> None:
    tracker = AuthenticationTracker()
    tracker.smb2_request(smb2(1, 1), Smb2SessionSetupRequest(0, 1, 0, 0, None))
    tracker.smb2_response(smb2(1, 1, 77, MORE, True), Smb2SessionSetupResponse(0, None), True, 1.0)
    assert tracker.describe_sessions()[0]["status"] is None  # still in progress
    tracker.smb2_request(smb2(1, 2, 77), Smb2SessionSetupRequest(0, 1, 0, 0, ntlm_auth("bob", 24)))
    tracker.smb2_response(smb2(1, 2, 77, 0, True), Smb2SessionSetupResponse(0x4, None), True, 1.1)
    tracker.smb2_request(smb2(3, 3, 77), Smb2TreeConnectRequest(0, "\\\\fs\\data"))
    tracker.smb2_response(smb2(3, 3, 77, 0, True), Smb2TreeConnectResponse(1, 0, 0, 0), False, 1.2)
    [session] = tracker.describe_sessions()
    assert (session["user"], session["auth"], session["status"], session["legs"]) == (
        "bob",
        "ntlmv1",
        "STATUS_SUCCESS",
        2,
    )
    assert session["session_flags"] == ["encrypt_data"]
    assert "NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY" in session["ntlm_flags"]
    assert tracker.trees == [
        {"path": "\\\\fs\\data", "status": "STATUS_SUCCESS", "session_id": "0x4d", "share_type": "disk", "tree_id": 0}
    ]


def test_guest_session_overrides_the_attempted_kind() -> None:
    tracker = AuthenticationTracker()
    tracker.smb2_request(smb2(1, 1), Smb2SessionSetupRequest(0, 1, 0, 0, ntlm_auth("nobody", 100)))
    tracker.smb2_response(smb2(1, 1, 5, 0, True), Smb2SessionSetupResponse(0x1, None), True, 1.0)
    [session] = tracker.describe_sessions()
    assert session["auth"] == "guest" and session["session_flags"] == ["is_guest"]


def test_smb1_legacy_forms() -> None:
    tracker = AuthenticationTracker()

    def login(mid: int, request: Smb1SessionSetupRequest, encrypt: bool | None, status: int = 0) -> dict:
        header = Smb1Header(0x73, 0, 0x18, 0xC001, 0, 100, 0, mid)
        tracker.smb1_request(header, request, encrypt)
        reply = header._replace(flags=0x98, status=status, uid=mid)
        tracker.smb1_response(reply, Smb1SessionSetupResponse(0, None, "", "", "") if not status else None, 1.0)
        return tracker.describe_sessions()[-1]

    def legacy(oem: int, unicode: int, account: str = "bob") -> Smb1SessionSetupRequest:
        return Smb1SessionSetupRequest("nt", 0, None, oem, unicode, account, "LAB", "Windows XP", "LM")

    assert login(1, legacy(24, 24), True)["auth"] == "ntlmv1"
    assert login(2, legacy(24, 66), True)["auth"] == "ntlmv2"
    assert login(3, legacy(24, 0), True)["auth"] == "lm"
    assert login(4, legacy(0, 0, ""), True)["auth"] == "anonymous"
    failed = login(5, legacy(9, 0), False, LOGON_FAILURE)
    assert (failed["auth"], failed["status"]) == ("plaintext", "STATUS_LOGON_FAILURE")


def test_caps_are_counted_anomalies() -> None:
    tracker = AuthenticationTracker()
    for message_id in range(MAX_PENDING_REQUESTS + 10):
        tracker.smb2_request(smb2(1, message_id), Smb2SessionSetupRequest(0, 1, 0, 0, None))
    for session_id in range(MAX_SESSIONS + 3):
        tracker.smb2_response(smb2(1, 99_999, session_id + 1, 0, True), Smb2SessionSetupResponse(0, None), True, 1.0)
    assert len(tracker.describe_sessions()) == MAX_SESSIONS
    assert tracker.cap_anomalies() == {AnomalyKind.PENDING_REQUESTS_FULL: 10, AnomalyKind.SESSIONS_FULL: 3}


def test_tree_connects_past_the_cap_are_counted() -> None:
    tracker = AuthenticationTracker()
    for message_id in range(MAX_TREES + 5):
        tracker.smb2_request(smb2(3, message_id, 77), Smb2TreeConnectRequest(0, f"\\\\fs\\share{message_id}"))
        tracker.smb2_response(smb2(3, message_id, 77, 0, True), Smb2TreeConnectResponse(1, 0, 0, 0), False, 1.0)
    assert len(tracker.trees) == MAX_TREES
    assert tracker.cap_anomalies() == {AnomalyKind.TREES_FULL: 5}


def test_session_setup_outcomes_past_the_cap_of_one_delivery_are_counted() -> None:
    tracker = AuthenticationTracker()
    extra = 6
    for message_id in range(MAX_PENDING_REQUESTS + extra):  # one delivery: nothing drains the results
        header = smb2(1, message_id, 0x77, 0xC000006D, True)  # STATUS_LOGON_FAILURE, again and again
        tracker.smb2_response(header, Smb2SessionSetupResponse(0, None), True, 1.0)
    assert len(tracker.results) == MAX_PENDING_REQUESTS
    assert tracker.cap_anomalies() == {AnomalyKind.SESSION_RESULTS_FULL: extra}
    tracker.results.clear()  # the pipeline hands them on; the next delivery has room again
    tracker.smb2_response(smb2(1, 1, 0x77, 0xC000006D, True), Smb2SessionSetupResponse(0, None), True, 2.0)
    assert len(tracker.results) == 1
    assert tracker.cap_anomalies() == {AnomalyKind.SESSION_RESULTS_FULL: extra}
