#!/usr/bin/env bash
# Re-record the SMB captures in pcaps/recorded/ inside a private network lab.
#
#   sudo bash pcaps/lab/record.sh                  # all scenarios
#   sudo bash pcaps/lab/record.sh smb3_1_1 ipv6    # only these
#   sudo bash pcaps/lab/record.sh --list           # list scenario names
#
# Requirements (Debian 12 packages): iproute2, samba (smbd, smbpasswd),
# smbclient, tcpdump, tshark (dumpcap, tshark), libnss-wrapper, ethtool
# (optional: offloads stay on without it), coreutils, util-linux (setsid),
# python3 (>= 3.11) and python3-scapy (for derive.py, make_crafted.py and
# verify.py, which run at the end).
# Must run as root (network namespaces).
#
# What it builds (everything is removed again by the EXIT trap, even on
# failure):
#   netns smbw-lab-br   bridge br0, ports v-cli and v-srv
#   netns smbw-lab-cli  eth0 = 192.0.2.10/24, 2001:db8:5b::10/64 (nodad)
#                       MAC 02:00:00:5b:00:10; smbclient and the capture run here
#   netns smbw-lab-srv  eth0 = 192.0.2.20/24, 2001:db8:5b::20/64 (nodad)
#                       MAC 02:00:00:5b:00:20; a private smbd runs here
# Only documentation addresses (192.0.2.0/24, 2001:db8:5b::/64) are used and
# no traffic leaves the namespaces (the root namespace is not connected).
#
# Per scenario a fresh smbd (--foreground --no-process-group, under setsid,
# own pid/lock/state/private/cache dirs in a mktemp dir) is started with that
# scenario's smb.conf; nmbd and winbindd are never started. The Samba user
# "alice" (password "Passw0rd!") exists only in nss_wrapper passwd/group files
# in the temp dir, so the machine's /etc/passwd is not touched. The share
# "data" holds two small files.
#
# The capture runs in the client namespace (tcpdump --immediate-mode, filter
# 'tcp port 445 or tcp port 139'), is started before the client, waited for
# until it is listening, and stopped with SIGINT a moment after the client
# ends. Each file is written to the temp dir first and moved into
# pcaps/recorded/ only after tshark has seen SMB in it.
#
# When smb3_1_1 is (re-)recorded, pcaps/derived/ and pcaps/crafted/ are rebuilt
# from it (derive.py, make_crafted.py). Finally verify.py checks every file
# against pcaps/manifest.toml with tshark; the exit status is non-zero if
# anything differs.
#
# The auth_* scenarios (logins: NTLMv2, NTLMv1, legacy SMB1, plaintext, guest,
# anonymous, failures, Kerberos) run their smbd (and samba-dcerpcd where RPC is
# needed) in a private mount namespace that hides /var/log/samba. auth_kerberos
# provisions a throw-away Samba AD DC (realm LAB.SMBWATCH.TEST) into the temp
# dir with samba-tool and runs `samba` instead of smbd; it also needs the
# Debian packages samba-dsdb-modules and winbind (winbindd).
#
# The files_*, rpc_recon and *_impacket / rpc_coercion_attempts /
# print_driver_install scenarios record what happens after the login (file
# activity, DCE/RPC over named pipes); the impacket ones install the "lab"
# extra of pyproject.toml (impacket) into pcaps/lab/.venv on first use.
# admin_share_copy_exe and smbclient_list_* are smbclient controls (an .exe
# copied to ADMIN$ without RPC, share listings).
# SMBW_LAB_KEEP=DIR keeps a capture that failed its tshark check in DIR.
# SMBW_LAB_NS=PREFIX names the namespaces PREFIX-cli, PREFIX-srv, ... instead
# of smbw-lab-* (two recordings at once on one machine).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(dirname "$HERE")
OUT="$PCAPS/recorded"

# SMBW_LAB_NS=PREFIX renames the namespaces (two recordings at once on one machine)
NS_PREFIX=${SMBW_LAB_NS:-smbw-lab}
NS_BR=$NS_PREFIX-br
NS_CLI=$NS_PREFIX-cli
NS_SRV=$NS_PREFIX-srv
CLI4=192.0.2.10
SRV4=192.0.2.20
CLI6=2001:db8:5b::10
SRV6=2001:db8:5b::20
CLI_MAC=02:00:00:5b:00:10
SRV_MAC=02:00:00:5b:00:20
LAB_USER=alice
LAB_PASS='Passw0rd!'
LAB_UID=45150
CAP_FILTER='tcp port 445 or tcp port 139'
# extra lab servers (nmap sweep and control_three_servers only; created on demand)
NS_SRV2=$NS_PREFIX-srv2
NS_SRV3=$NS_PREFIX-srv3
SRV2_4=192.0.2.21
SRV3_4=192.0.2.22
SRV2_MAC=02:00:00:5b:00:21
SRV3_MAC=02:00:00:5b:00:22
# scan_445_sweep only: a router namespace (192.0.2.1) that the client reaches
# the rest of 192.0.2.0/24 through, so that nmap sends its SYNs to every
# address (on a directly connected subnet nmap ARPs first and sends SYNs only
# to hosts that answered ARP)
NS_RTR=$NS_PREFIX-rtr
RTR4=192.0.2.1
RTR_MAC=02:00:00:5b:00:01
EXTRA_SMBD_PIDS=()
EXTRA_NET_UP=0

ALL_SCENARIOS=(
  smb1_nt1 smb2_0_2 smb2_1 smb3_0 smb3_0_2 smb3_1_1
  smb1_offered_upgraded smb1_refused signing_required encrypted_3_1_1
  netbios_139 ipv6 sll2_any sll_any pcapng_two_ifaces nanosecond
  bulk_3_0_2
  auth_ntlmv2_smb2 auth_ntlmv2_smb1 auth_ntlmv1 auth_ntlmv1_ess auth_legacy_smb1
  auth_legacy_ntlmv1_smb1 auth_plaintext_smb1 auth_guest auth_anonymous
  auth_wrong_password auth_unknown_user auth_kerberos
  nmap_smb_protocols nmap_security_mode nmap_ms17_010 nmap_double_pulsar scan_445_sweep
  control_reconnects control_large_copy control_three_servers
  smb1_browsing_139 smb1_printing smb1_named_pipe
  files_activity files_ransomware_like files_smb1 rpc_recon
  psexec_impacket smbexec_impacket atexec_impacket rpc_coercion_attempts print_driver_install
  files_backup_read_all files_deployment_many_new files_user_renames_few files_ransomware_encrypted
  files_ransomware_smb1 admin_share_copy_exe smbclient_list_auth smbclient_list_anonymous
  services_impacket samrdump_impacket lookupsid_impacket reg_impacket
)

log() { printf '[record] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ${1:-} == --list ]]; then printf '%s\n' "${ALL_SCENARIOS[@]}"; exit 0; fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,58p' "$0"; exit 0; fi
[[ $EUID -eq 0 ]] || die "must run as root (network namespaces)"

SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario '$s' (see --list)"
done

for tool in ip smbd smbpasswd smbclient tcpdump dumpcap tshark setsid timeout ss; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
NSS_WRAPPER_LIB=""
for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /usr/lib64/libnss_wrapper.so; do
  [[ -e $lib ]] && { NSS_WRAPPER_LIB=$lib; break; }
done
[[ -n $NSS_WRAPPER_LIB ]] || die "libnss_wrapper.so not found (apt-get install libnss-wrapper)"
HAVE_ETHTOOL=0
command -v ethtool >/dev/null && HAVE_ETHTOOL=1

WORK=$(mktemp -d /tmp/smbw-lab.XXXXXX)
chmod 755 "$WORK"        # the share below must be reachable for alice's uid
SRV="$WORK/srv"
CLI="$WORK/cli"
SMBD_PID=""
CAP_PID=""

# ---------------------------------------------------------------- teardown
stop_capture() {
  [[ -n $CAP_PID ]] || return 0
  if kill -0 "$CAP_PID" 2>/dev/null; then
    kill -INT "$CAP_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CAP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$CAP_PID" 2>/dev/null && kill -KILL "$CAP_PID" 2>/dev/null
  fi
  wait "$CAP_PID" 2>/dev/null || true
  CAP_PID=""
}

stop_smbd() {
  [[ -n $SMBD_PID ]] || return 0
  # setsid made SMBD_PID the leader of its own process group: the group is
  # exactly timeout + smbd + smbd's per-connection children.
  kill -TERM -- "-$SMBD_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-$SMBD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 -- "-$SMBD_PID" 2>/dev/null && kill -KILL -- "-$SMBD_PID" 2>/dev/null
  wait "$SMBD_PID" 2>/dev/null || true
  SMBD_PID=""
}

stop_extra_smbds() {
  local pid
  for pid in "${EXTRA_SMBD_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 -- "-$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  EXTRA_SMBD_PIDS=()
}

teardown_net() {
  ip -n "$NS_BR" link del br0 2>/dev/null || true
  local ns
  for ns in "$NS_CLI" "$NS_SRV" "$NS_SRV2" "$NS_SRV3" "$NS_RTR" "$NS_BR"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_capture
  stop_smbd
  stop_extra_smbds
  teardown_net
  rm -rf "$WORK"
  if [[ $rc -ne 0 ]]; then log "failed (exit $rc); lab torn down"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- network
nsx() { local ns=$1; shift; timeout 20 ip netns exec "$ns" "$@"; }

no_offload() {
  local ns=$1 dev=$2 feat
  [[ $HAVE_ETHTOOL -eq 1 ]] || return 0
  for feat in tso gso gro lro tx rx sg; do
    nsx "$ns" ethtool -K "$dev" "$feat" off >/dev/null 2>&1 || true
  done
}

setup_net() {
  teardown_net   # leftovers of an interrupted run (same names, ours)
  ip netns add "$NS_BR"
  ip netns add "$NS_CLI"
  ip netns add "$NS_SRV"
  local ns
  for ns in "$NS_BR" "$NS_CLI" "$NS_SRV"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$NS_BR" link add br0 type bridge stp_state 0 forward_delay 0
  # no IPv6 autoconf noise from the bridge itself
  nsx "$NS_BR" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1 || true
  ip -n "$NS_BR" link add v-cli type veth peer name eth0 netns "$NS_CLI"
  ip -n "$NS_BR" link add v-srv type veth peer name eth0 netns "$NS_SRV"
  ip -n "$NS_BR" link set v-cli master br0
  ip -n "$NS_BR" link set v-srv master br0
  ip -n "$NS_CLI" link set eth0 address "$CLI_MAC"
  ip -n "$NS_SRV" link set eth0 address "$SRV_MAC"
  no_offload "$NS_BR" v-cli
  no_offload "$NS_BR" v-srv
  no_offload "$NS_CLI" eth0
  no_offload "$NS_SRV" eth0
  ip -n "$NS_CLI" addr add "$CLI4/24" dev eth0
  ip -n "$NS_SRV" addr add "$SRV4/24" dev eth0
  ip -n "$NS_CLI" -6 addr add "$CLI6/64" dev eth0 nodad
  ip -n "$NS_SRV" -6 addr add "$SRV6/64" dev eth0 nodad
  ip -n "$NS_BR" link set v-cli up
  ip -n "$NS_BR" link set v-srv up
  ip -n "$NS_BR" link set br0 up
  ip -n "$NS_CLI" link set eth0 up
  ip -n "$NS_SRV" link set eth0 up
  # wait until the bridge forwards (IPv4 and IPv6); no ping on this machine,
  # so probe with a TCP connect to a closed port: "refused" (an RST came back)
  # means the path works.
  local addr out ok
  for addr in "$SRV4" "$SRV6"; do
    ok=0
    for _ in $(seq 50); do
      out=$(nsx "$NS_CLI" bash -c "exec 3<>/dev/tcp/$addr/9" 2>&1 || true)
      if [[ $out == *refused* ]]; then ok=1; break; fi
      sleep 0.1
    done
    [[ $ok -eq 1 ]] || die "bridge does not forward to $addr"
  done
  log "network up: $NS_CLI ($CLI4, $CLI6) <-> br0 <-> $NS_SRV ($SRV4, $SRV6)"
}

# ---------------------------------------------------------------- samba
setup_samba_files() {
  mkdir -p "$SRV"/{run,lock,state,cache,private,ncalrpc,bind-dns,log} "$CLI"/{lock,state,cache,private,run,ncalrpc,log}
  chmod 700 "$SRV/private" "$CLI/private"
  mkdir -p "$SRV/share"
  printf 'Hello from the smbwatch capture lab.\n' >"$SRV/share/hello.txt"
  printf 'notes: this share holds two small files.\n' >"$SRV/share/notes.txt"
  # 1 MiB of text for the bulk scenario: full-size segments of READ data.
  # (process substitution: `yes` dies of SIGPIPE, which pipefail would take for a failure)
  head -c 1048576 < <(yes 'smbwatch bulk transfer test line') >"$SRV/share/big.txt"
  head -c 262144 < <(yes 'smbwatch upload test line') >"$CLI/upload.txt"
  mkdir -p "$SRV/upload"
  chmod 777 "$SRV/upload"  # the bulk scenario writes here as alice
  chmod 755 "$SRV" "$SRV/share"
  chmod 644 "$SRV/share/"*.txt
  # nss_wrapper: system accounts + alice, without touching /etc/passwd
  { cat /etc/passwd; echo "$LAB_USER:x:$LAB_UID:$LAB_UID:smbwatch lab:/nonexistent:/usr/sbin/nologin"; } >"$WORK/passwd"
  { cat /etc/group; echo "$LAB_USER:x:$LAB_UID:"; } >"$WORK/group"
  chmod 644 "$WORK/passwd" "$WORK/group"

  cat >"$CLI/smb.conf" <<EOF
[global]
    netbios name = SMBWLAB-CLI
    workgroup = SMBWLAB
    lock directory = $CLI/lock
    state directory = $CLI/state
    cache directory = $CLI/cache
    private dir = $CLI/private
    pid directory = $CLI/run
    ncalrpc dir = $CLI/ncalrpc
    log file = $CLI/log/smbclient.log
    client use kerberos = off
    name resolve order = host
EOF
}

# write_server_conf NAME PORTS NETBIOS(yes|no) EXTRA...
write_server_conf() {
  local name=$1 ports=$2 nb=$3; shift 3
  local conf="$SRV/smb-$name.conf"
  {
    cat <<EOF
[global]
    netbios name = SMBWLAB-SRV
    workgroup = SMBWLAB
    server string = smbwatch lab
    server role = standalone server
    security = user
    passdb backend = tdbsam:$SRV/private/passdb.tdb
    pid directory = $SRV/run
    lock directory = $SRV/lock
    state directory = $SRV/state
    cache directory = $SRV/cache
    private dir = $SRV/private
    ncalrpc dir = $SRV/ncalrpc
    binddns dir = $SRV/bind-dns
    log file = $SRV/log/smbd.log
    logging = file
    log level = 1
    smb ports = $ports
    disable netbios = $nb
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    usershare path =
    map to guest = never
    obey pam restrictions = no
    kernel oplocks = no
EOF
    local line
    for line in "$@"; do printf '    %s\n' "$line"; done
    cat <<EOF

[data]
    path = $SRV/share
    read only = yes
    browseable = yes

[upload]
    path = $SRV/upload
    read only = no
    browseable = yes
EOF
    # extra share sections (auth scenarios only; empty for all others)
    [[ -z ${SRV_EXTRA_SECTIONS:-} ]] || printf '\n%s\n' "$SRV_EXTRA_SECTIONS"
  } >"$conf"
  printf '%s' "$conf"
}

nss_env() {
  printf '%s\n' env "LD_PRELOAD=$NSS_WRAPPER_LIB" "NSS_WRAPPER_PASSWD=$WORK/passwd" "NSS_WRAPPER_GROUP=$WORK/group"
}

USER_ADDED=0
start_smbd() {
  local conf=$1 port=${2:-445}
  stop_smbd
  local -a envc
  mapfile -t envc < <(nss_env)
  if [[ $USER_ADDED -eq 0 ]]; then
    printf '%s\n%s\n' "$LAB_PASS" "$LAB_PASS" |
      timeout 20 "${envc[@]}" smbpasswd -c "$conf" -s -a "$LAB_USER" >/dev/null
    USER_ADDED=1
  fi
  setsid timeout 600 ip netns exec "$NS_SRV" "${envc[@]}" \
    smbd --foreground --no-process-group -s "$conf" \
    </dev/null >>"$SRV/log/smbd.stdout" 2>&1 &
  SMBD_PID=$!
  local _
  for _ in $(seq 100); do
    if nsx "$NS_SRV" ss -Hltn "sport = :$port" | grep -q LISTEN; then return 0; fi
    kill -0 "$SMBD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$SRV/log/smbd.stdout" "$SRV/log/smbd.log" >&2 2>/dev/null || true
  die "smbd ($conf) is not listening on port $port"
}

# ---------------------------------------------------------------- capture
# start_capture KIND FILE ; KIND = eth | nano | sll | sll2 | pcapng2
start_capture() {
  local kind=$1 file=$2
  local err="$WORK/capture.err"
  : >"$err"
  local -a cmd
  case $kind in
    eth)  cmd=(tcpdump --immediate-mode -Z root -U -i eth0 -w "$file" "$CAP_FILTER") ;;
    nano) cmd=(tcpdump --immediate-mode -Z root -U --time-stamp-precision=nano -i eth0 -w "$file" "$CAP_FILTER") ;;
    sll)  cmd=(tcpdump --immediate-mode -Z root -U -i any -y LINUX_SLL -w "$file" "$CAP_FILTER") ;;
    sll2) cmd=(tcpdump --immediate-mode -Z root -U -i any -y LINUX_SLL2 -w "$file" "$CAP_FILTER") ;;
    pcapng2)
      # interface 0: eth0 (Ethernet) sees the IPv4 session only;
      # interface 1: any (Linux cooked v2) sees the IPv6 session only.
      cmd=(dumpcap -q -n -i eth0 -f 'tcp port 445 and ip'
                        -i any -y LINUX_SLL2 -f 'tcp port 445 and ip6'
                        -w "$file") ;;
    *) die "unknown capture kind $kind" ;;
  esac
  timeout 300 ip netns exec "$NS_CLI" "${cmd[@]}" </dev/null >/dev/null 2>"$err" &
  CAP_PID=$!
  local _ pattern='listening on'
  [[ $kind == pcapng2 ]] && pattern='Capturing on'
  for _ in $(seq 100); do
    grep -q "$pattern" "$err" && { sleep 0.3; return 0; }
    kill -0 "$CAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$err" >&2
  die "capture ($kind) did not start"
}

finish_capture() {
  sleep 1
  stop_capture
  cat "$WORK/capture.err" | grep -v -e 'listening on' -e 'Capturing on' -e '^File:' -e 'packets' >&2 || true
}

# ---------------------------------------------------------------- client
# smbc MIN MAX [extra smbclient args...] -- COMMANDS
smbc() {
  local min=$1 max=$2; shift 2
  local -a extra=()
  while [[ $1 != -- ]]; do extra+=("$1"); shift; done
  shift
  local cmds=$1
  local -a target=("//$SRV4/data")
  log "  smbclient min=$min max=$max ${extra[*]} -c '$cmds'"
  # "|| rc=$?": a refused negotiate is an expected failure in some scenarios
  local rc=0
  timeout 60 ip netns exec "$NS_CLI" smbclient -s "$CLI/smb.conf" \
    --option="client min protocol=$min" --option="client max protocol=$max" \
    -U "$LAB_USER%$LAB_PASS" "${extra[@]}" "${target[@]}" -c "$cmds" \
    </dev/null >"$WORK/client.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/client.out" >&2
  return "$rc"
}

SESSION_CMDS='ls; get hello.txt /dev/null'

# ---------------------------------------------------------------- checks
check_pcap() {
  local file=$1 expect=$2   # expect: display filter that must match >=1 packet
  local n
  n=$(timeout 60 tshark -n -r "$file" -Y "$expect" 2>/dev/null | wc -l)
  if [[ $n -eq 0 ]]; then
    # SMBW_LAB_KEEP=DIR keeps the failed capture there for a look
    [[ -z ${SMBW_LAB_KEEP:-} ]] || cp "$file" "$SMBW_LAB_KEEP/"
    die "$(basename "$file"): no packet matches '$expect'"
  fi
}

# check_pcap_none FILE FILTER: no packet may match (what encryption hides, RPC that must not be there)
check_pcap_none() {
  local file=$1 reject=$2 n
  # tshark's exit status counts here: a filter it cannot parse must not pass as "nothing matched"
  n=$(timeout 60 tshark -n -r "$file" -Y "$reject" 2>"$WORK/tshark.err" | wc -l) ||
    die "tshark cannot apply '$reject': $(head -n 3 "$WORK/tshark.err")"
  if [[ $n -ne 0 ]]; then
    [[ -z ${SMBW_LAB_KEEP:-} ]] || cp "$file" "$SMBW_LAB_KEEP/"
    die "$(basename "$file"): $n packet(s) match '$reject', expected none"
  fi
}

# check_pcap_count FILE FILTER N: exactly N packets match
check_pcap_count() {
  local file=$1 expect=$2 want=$3 n
  n=$(timeout 60 tshark -n -r "$file" -Y "$expect" 2>/dev/null | wc -l)
  if [[ $n -ne $want ]]; then
    [[ -z ${SMBW_LAB_KEEP:-} ]] || cp "$file" "$SMBW_LAB_KEEP/"
    die "$(basename "$file"): $n packet(s) match '$expect', expected $want"
  fi
}

publish() {
  local name=$1 tmp=$2 ext=${3:-pcap}
  mkdir -p "$OUT"
  chmod 644 "$tmp"
  mv -f "$tmp" "$OUT/$name.$ext"
  log "  -> recorded/$name.$ext ($(stat -c %s "$OUT/$name.$ext") bytes)"
}

# ---------------------------------------------------------------- auth scenarios
# The auth_* scenarios record one login each (NTLMv2/NTLMv1 in NTLMSSP, the
# SMB1 session setup without extended security, plaintext, guest, anonymous,
# failed logins, Kerberos). Server-side settings are the scenario's extra
# smb.conf lines; client-side ones are smbclient --option arguments.

# smbc_auth MIN MAX SMBCLIENT_ARGS... : like smbc, but target, credentials and
# commands all come from the caller. SMBC_CONF / SMBC_ENV (array) override the
# client smb.conf and add environment variables (Kerberos scenario).
smbc_auth() {
  local min=$1 max=$2; shift 2
  local conf=${SMBC_CONF:-$CLI/smb.conf}
  local -a envv=("${SMBC_ENV[@]}")
  log "  smbclient min=$min max=$max $*"
  local rc=0
  timeout 60 ip netns exec "$NS_CLI" env "${envv[@]}" smbclient -s "$conf" \
    --option="client min protocol=$min" --option="client max protocol=$max" "$@" \
    </dev/null >"$WORK/client.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/client.out" >&2
  return "$rc"
}
SMBC_CONF=""
SMBC_ENV=()

# Run a Samba daemon with $1 bind-mounted over /var/log/samba in a private
# mount namespace: smbd, samba-dcerpcd, rpcd_* and samba write a few lines
# (deprecated-option warnings, start banners) to /var/log/samba before they
# read "log file" from smb.conf; this keeps them in the lab's temp dir.
# shellcheck disable=SC2016
PRIVATE_VARLOG_SH='[ ! -d /var/log/samba ] || mount --bind "$1" /var/log/samba || exit 1; shift; exec "$@"'

# start_smbd_auth CONF [RPCD(0|1)]: like start_smbd, inside PRIVATE_VARLOG_SH.
# With RPCD=1 (the config must say "rpc start on demand helpers = no") a
# samba-dcerpcd is started next to smbd in the same process group: the one
# smbd would start on demand for RPC (srvsvc for "smbclient -L") detaches
# with setsid and would outlive the scenario.
start_smbd_auth() {
  local conf=$1 rpcd=${2:-0}
  stop_smbd
  local -a envc
  mapfile -t envc < <(nss_env)
  if [[ $USER_ADDED -eq 0 ]]; then
    printf '%s\n%s\n' "$LAB_PASS" "$LAB_PASS" |
      timeout 20 "${envc[@]}" smbpasswd -c "$conf" -s -a "$LAB_USER" >/dev/null
    USER_ADDED=1
  fi
  mkdir -p "$SRV/varlog"
  local -a daemon=(smbd --foreground --no-process-group -s "$conf")
  if [[ $rpcd -eq 1 ]]; then
    local dcerpcd=/usr/libexec/samba/samba-dcerpcd
    [[ -x $dcerpcd ]] || die "samba-dcerpcd not found at $dcerpcd"
    # sh: samba-dcerpcd in the background, then exec smbd (both get the
    # nss_wrapper environment through "$@" = env ...)
    # shellcheck disable=SC2016
    daemon=(sh -c 'conf=$1; rpcd=$2; shift 2
                   "$@" "$rpcd" --libexec-rpcds --foreground --no-process-group -s "$conf" </dev/null &
                   exec "$@" smbd --foreground --no-process-group -s "$conf"' sh "$conf" "$dcerpcd" "${envc[@]}")
    envc=()
  fi
  setsid timeout 600 ip netns exec "$NS_SRV" unshare --mount --propagation private \
    sh -c "$PRIVATE_VARLOG_SH" sh "$SRV/varlog" "${envc[@]}" "${daemon[@]}" \
    </dev/null >>"$SRV/log/smbd.stdout" 2>&1 &
  SMBD_PID=$!
  local _
  for _ in $(seq 100); do
    if nsx "$NS_SRV" ss -Hltn "sport = :445" | grep -q LISTEN; then return 0; fi
    kill -0 "$SMBD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$SRV/log/smbd.stdout" "$SRV/log/smbd.log" >&2 2>/dev/null || true
  die "smbd ($conf) is not listening on port 445"
}

# auth_start NAME CONF_LINES(array name) [RPCD]: server up, capture running
auth_start() {
  local name=$1 rpcd=${3:-0}
  local -n _auth_conf=$2
  local conf
  conf=$(write_server_conf "$name" 445 yes "${_auth_conf[@]}")
  start_smbd_auth "$conf" "$rpcd"
  start_capture eth "$WORK/$name.pcap"
}

# auth_finish NAME FILTER... : stop capture and server; every display filter
# must match at least one packet ("none:FILTER": no packet, "=N:FILTER":
# exactly N packets); then publish
auth_finish() {
  local name=$1; shift
  finish_capture
  stop_smbd
  local f
  for f in "$@"; do
    case $f in
      none:*) check_pcap_none "$WORK/$name.pcap" "${f#none:}" ;;
      =[0-9]*:*) local n=${f%%:*}; check_pcap_count "$WORK/$name.pcap" "${f#*:}" "${n#=}" ;;
      *) check_pcap "$WORK/$name.pcap" "$f" ;;
    esac
  done
  publish "$name" "$WORK/$name.pcap"
}

# --- Kerberos: a Samba AD DC (realm LAB.SMBWATCH.TEST, host dc, 192.0.2.20)
# provisioned into $WORK/dc with samba-tool and run as `samba` in the server
# namespace. Its KDC listens on 192.0.2.20:88; the capture filter keeps only
# 445/139, so the AS/TGS exchanges are not in the file, only the AP-REQ inside
# SESSION_SETUP. Notes (Samba 4.17):
#  - samba-tool provision copies the host's resolv.conf nameserver into
#    "dns forwarder"; that line is deleted and the dns service is not started.
#  - smbd on a DC maps SIDs to uids through winbindd; libwbclient only takes a
#    non-default socket dir from SELFTEST_WINBINDD_SOCKET_DIR, and only when
#    nss_wrapper is active (NSS_WRAPPER_PASSWD/GROUP set). Without it the
#    session setup fails with STATUS_INTERNAL_ERROR after a good AP-REQ.
#  - smbd/winbindd started by samba write their first log lines to
#    /var/log/samba before reading smb.conf: a private mount namespace binds
#    $WORK/dc/varlog over /var/log/samba so the machine is not touched.
KRB_REALM=LAB.SMBWATCH.TEST
KRB_DOMAIN=LAB
KRB_DC_FQDN=dc.lab.smbwatch.test
KRB_ADMIN_PASS='Adm1n-Passw0rd!'

start_dc() {
  local tool
  for tool in samba samba-tool winbindd unshare; do
    command -v "$tool" >/dev/null || die "missing tool for auth_kerberos: $tool"
  done
  stop_smbd
  local dc="$WORK/dc"
  rm -rf "$dc"
  mkdir -p "$dc"/{run,log,varlog,ncalrpc,winbindd,ntp_signd,cache}
  local -a envc
  mapfile -t envc < <(nss_env)
  log "  provisioning AD DC $KRB_REALM ($KRB_DC_FQDN = $SRV4) in $dc"
  timeout 180 "${envc[@]}" samba-tool domain provision --targetdir="$dc" \
    --realm="$KRB_REALM" --domain="$KRB_DOMAIN" --server-role=dc \
    --dns-backend=SAMBA_INTERNAL --use-rfc2307 --adminpass="$KRB_ADMIN_PASS" \
    --host-name=dc --host-ip="$SRV4" \
    --option="interfaces = $SRV4" --option="bind interfaces only = yes" \
    --option="pid directory = $dc/run" --option="ncalrpc dir = $dc/ncalrpc" \
    --option="winbindd socket directory = $dc/winbindd" \
    --option="ntp signd socket directory = $dc/ntp_signd" \
    --option="cache directory = $dc/cache" \
    --option="log file = $dc/log/log.%m" --option="log level = 1" \
    --option="server services = -dns -nbt -wrepl -ntp_signd -kcc -drepl -dnsupdate" \
    --option="disable netbios = yes" --option="smb ports = 445" \
    --option="load printers = no" --option="printing = bsd" \
    --option="printcap name = /dev/null" --option="disable spoolss = yes" \
    >"$dc/log/provision.log" 2>&1 || { tail -n 30 "$dc/log/provision.log" >&2; die "samba-tool domain provision failed"; }
  local conf="$dc/etc/smb.conf"
  sed -i -e '/^[[:space:]]*dns forwarder[[:space:]]*=/d' -e '/^[[:space:]]*panic action[[:space:]]*=/d' "$conf"
  timeout 60 "${envc[@]}" samba-tool user create "$LAB_USER" "$LAB_PASS" -s "$conf" >/dev/null ||
    die "samba-tool user create $LAB_USER failed"
  setsid timeout 600 ip netns exec "$NS_SRV" unshare --mount --propagation private \
    sh -c "$PRIVATE_VARLOG_SH" sh "$dc/varlog" "${envc[@]}" "SELFTEST_WINBINDD_SOCKET_DIR=$dc/winbindd" \
    samba -i -M single --no-process-group --maximum-runtime=500 -s "$conf" \
    </dev/null >>"$dc/log/samba.stdout" 2>&1 &
  SMBD_PID=$!
  local port ok
  for port in 88 445; do
    ok=0
    for _ in $(seq 300); do
      if nsx "$NS_SRV" ss -Hltn "sport = :$port" | grep -q LISTEN; then ok=1; break; fi
      kill -0 "$SMBD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [[ $ok -eq 0 ]]; then
      tail -n 30 "$dc/log/samba.stdout" >&2 || true
      die "samba AD DC is not listening on port $port"
    fi
  done
  # KRB5 client config for the client namespace: KDC by address, no DNS
  cat >"$CLI/krb5.conf" <<EOF
[libdefaults]
    default_realm = $KRB_REALM
    dns_lookup_realm = false
    dns_lookup_kdc = false
    dns_canonicalize_hostname = false
    rdns = false
[realms]
    $KRB_REALM = {
        kdc = $SRV4
    }
[domain_realm]
    .lab.smbwatch.test = $KRB_REALM
    lab.smbwatch.test = $KRB_REALM
EOF
  sed -e 's/^    workgroup = .*/    workgroup = LAB\n    realm = LAB.SMBWATCH.TEST/' \
      -e 's/^    client use kerberos = .*/    client use kerberos = required/' \
      "$CLI/smb.conf" >"$CLI/smb-krb.conf"
}

# ---------------------------------------------------------------- scenarios
# one_session NAME CAPKIND EXPECT_FILTER SERVER_CONF_LINES(array name) -- smbc args
one_session() {
  local name=$1 kind=$2 expect=$3 confvar=$4; shift 4
  local -n conflines=$confvar
  local ports="445" nb=yes
  local conf
  conf=$(write_server_conf "$name" "$ports" "$nb" "${conflines[@]}")
  start_smbd "$conf" 445
  local tmp="$WORK/$name.pcap"
  start_capture "$kind" "$tmp"
  smbc "$@" || log "  (client exit status $?)"
  finish_capture
  stop_smbd
  check_pcap "$tmp" "$expect"
  publish "$name" "$tmp"
}

# ---------------------------------------------------------------- scanner and control scenarios
# Extra servers smbw-lab-srv2 (192.0.2.21) and smbw-lab-srv3 (192.0.2.22) on
# the same bridge; set up the first time a scenario needs them.
setup_extra_net() {
  [[ $EXTRA_NET_UP -eq 0 ]] || return 0
  local ns dev ip4 mac spec
  for spec in "$NS_SRV2 v-srv2 $SRV2_4 $SRV2_MAC" "$NS_SRV3 v-srv3 $SRV3_4 $SRV3_MAC"; do
    read -r ns dev ip4 mac <<<"$spec"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$NS_BR" link add "$dev" type veth peer name eth0 netns "$ns"
    ip -n "$NS_BR" link set "$dev" master br0
    ip -n "$ns" link set eth0 address "$mac"
    no_offload "$NS_BR" "$dev"
    no_offload "$ns" eth0
    ip -n "$ns" addr add "$ip4/24" dev eth0
    nsx "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 || true
    ip -n "$NS_BR" link set "$dev" up
    ip -n "$ns" link set eth0 up
  done
  local addr out ok
  for addr in "$SRV2_4" "$SRV3_4"; do
    ok=0
    for _ in $(seq 50); do
      out=$(nsx "$NS_CLI" bash -c "exec 3<>/dev/tcp/$addr/9" 2>&1 || true)
      if [[ $out == *refused* ]]; then ok=1; break; fi
      sleep 0.1
    done
    [[ $ok -eq 1 ]] || die "bridge does not forward to $addr"
  done
  EXTRA_NET_UP=1
  log "extra servers up: $NS_SRV2 ($SRV2_4), $NS_SRV3 ($SRV3_4)"
}

# setup_router: namespace smbw-lab-rtr (192.0.2.1, IPv4 forwarding, no ICMP
# redirects, routes only to .10/.20/.21/.22, blackhole for the rest) on br0, and client routes: 192.0.2.1 on-link, the rest of
# 192.0.2.0/24 via 192.0.2.1. The servers still answer the client directly.
# client_routes_direct restores the client's connected route.
setup_router() {
  ip netns add "$NS_RTR"
  ip -n "$NS_RTR" link set lo up
  ip -n "$NS_BR" link add v-rtr type veth peer name eth0 netns "$NS_RTR"
  ip -n "$NS_BR" link set v-rtr master br0
  ip -n "$NS_RTR" link set eth0 address "$RTR_MAC"
  no_offload "$NS_BR" v-rtr
  no_offload "$NS_RTR" eth0
  # only the lab hosts are routed; the rest of the /24 is a blackhole (silent
  # drop: ICMP unreachables, which Linux rate-limits, make nmap slow down)
  ip -n "$NS_RTR" addr add "$RTR4/32" dev eth0
  nsx "$NS_RTR" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 || true
  nsx "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1
  nsx "$NS_RTR" sysctl -qw net.ipv4.conf.all.send_redirects=0
  nsx "$NS_RTR" sysctl -qw net.ipv4.conf.eth0.send_redirects=0
  ip -n "$NS_BR" link set v-rtr up
  ip -n "$NS_RTR" link set eth0 up
  local h
  for h in "$CLI4" "$SRV4" "$SRV2_4" "$SRV3_4"; do
    ip -n "$NS_RTR" route add "$h/32" dev eth0 src "$RTR4"
  done
  ip -n "$NS_RTR" route add blackhole 192.0.2.0/24
  ip -n "$NS_CLI" route del 192.0.2.0/24 dev eth0
  ip -n "$NS_CLI" route add "$RTR4/32" dev eth0 src "$CLI4"
  ip -n "$NS_CLI" route add 192.0.2.0/24 via "$RTR4" dev eth0 src "$CLI4"
  local out ok=0
  for _ in $(seq 50); do
    out=$(nsx "$NS_CLI" bash -c "exec 3<>/dev/tcp/$SRV3_4/9" 2>&1 || true)
    if [[ $out == *refused* ]]; then ok=1; break; fi
    sleep 0.1
  done
  [[ $ok -eq 1 ]] || die "router $RTR4 does not forward to $SRV3_4"
  log "router up: $NS_RTR ($RTR4); client routes 192.0.2.0/24 via $RTR4"
}

client_routes_direct() {
  ip -n "$NS_CLI" route del 192.0.2.0/24 via "$RTR4" dev eth0 2>/dev/null || true
  ip -n "$NS_CLI" route del "$RTR4/32" dev eth0 2>/dev/null || true
  ip -n "$NS_CLI" route add 192.0.2.0/24 dev eth0 src "$CLI4" 2>/dev/null || true
  ip -n "$NS_BR" link del v-rtr 2>/dev/null || true
  ip netns del "$NS_RTR" 2>/dev/null || true
}

# start_extra_smbd NS TAG BASECONF: a second smbd in namespace NS with its own
# pid/lock/state/cache/private/ncalrpc/log dirs under $SRV/TAG; it shares the
# passdb (alice) and the shares of BASECONF. Stopped by stop_extra_smbds.
start_extra_smbd() {
  local ns=$1 tag=$2 base=$3
  local d="$SRV/$tag"
  mkdir -p "$d"/{run,lock,state,cache,private,ncalrpc,bind-dns,log}
  chmod 700 "$d/private"
  local conf="$SRV/smb-$tag.conf"
  sed -e "s|^    netbios name = .*|    netbios name = SMBWLAB-${tag^^}|" \
      -e "s|^    pid directory = .*|    pid directory = $d/run|" \
      -e "s|^    lock directory = .*|    lock directory = $d/lock|" \
      -e "s|^    state directory = .*|    state directory = $d/state|" \
      -e "s|^    cache directory = .*|    cache directory = $d/cache|" \
      -e "s|^    private dir = .*|    private dir = $d/private|" \
      -e "s|^    ncalrpc dir = .*|    ncalrpc dir = $d/ncalrpc|" \
      -e "s|^    binddns dir = .*|    binddns dir = $d/bind-dns|" \
      -e "s|^    log file = .*|    log file = $d/log/smbd.log|" "$base" >"$conf"
  local -a envc
  mapfile -t envc < <(nss_env)
  setsid timeout 600 ip netns exec "$ns" "${envc[@]}" \
    smbd --foreground --no-process-group -s "$conf" \
    </dev/null >>"$d/log/smbd.stdout" 2>&1 &
  EXTRA_SMBD_PIDS+=("$!")
  local pid=$!
  for _ in $(seq 100); do
    if nsx "$ns" ss -Hltn "sport = :445" | grep -q LISTEN; then return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$d/log/smbd.stdout" "$d/log/smbd.log" >&2 2>/dev/null || true
  die "extra smbd ($tag in $ns) is not listening on port 445"
}

# nmapc ARGS...: nmap in the client namespace, bounded in time
nmapc() {
  log "  nmap $*"
  local rc=0
  timeout 120 ip netns exec "$NS_CLI" nmap "$@" </dev/null >"$WORK/nmap.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/nmap.out" >&2
  [[ $rc -eq 0 ]] || log "  (nmap exit status $rc)"
}

# nmap_scenario NAME SERVER_CONF_LINES(array name) EXPECT_FILTER... -- NMAP_ARGS...
nmap_scenario() {
  local name=$1 confvar=$2; shift 2
  local -a expects=()
  while [[ $1 != -- ]]; do expects+=("$1"); shift; done
  shift
  local -n _nconf=$confvar
  local conf
  conf=$(write_server_conf "$name" 445 yes "${_nconf[@]}")
  start_smbd "$conf" 445
  start_capture eth "$WORK/$name.pcap"
  nmapc "$@"
  finish_capture
  stop_smbd
  local f
  for f in "${expects[@]}"; do check_pcap "$WORK/$name.pcap" "$f"; done
  publish "$name" "$WORK/$name.pcap"
}

run_scanner_scenario() {
  local s=$1
  local -a srv_nt1=("server min protocol = NT1" "server max protocol = SMB3")
  local -a srv_default=("server min protocol = SMB2_02" "server max protocol = SMB3")
  case $s in
    nmap_smb_protocols)
      nmap_scenario "$s" srv_nt1 'smb.cmd == 0x72 && smb.flags.response == 1' 'smb2.cmd == 0 && smb2.flags.response == 1' -- \
        -Pn -n -p445 --max-retries 1 --script-timeout 60s --script smb-protocols "$SRV4" ;;
    nmap_security_mode)
      nmap_scenario "$s" srv_nt1 'smb.cmd == 0x72 && smb.flags.response == 1' 'smb2.cmd == 0 && smb2.flags.response == 1' -- \
        -Pn -n -p445 --max-retries 1 --script-timeout 60s --script smb-security-mode,smb2-security-mode "$SRV4" ;;
    nmap_ms17_010)
      nmap_scenario "$s" srv_nt1 'smb.cmd == 0x25 && smb.flags.response == 0' 'smb.cmd == 0x25 && smb.flags.response == 1' -- \
        -Pn -n -p445 --max-retries 1 --script-timeout 60s --script smb-vuln-ms17-010 "$SRV4" ;;
    nmap_double_pulsar)
      # nmap's DoublePulsar check: a TRANS2 SESSION_SETUP (subcommand 0x000e) "ping" with MID 65;
      # an implant would answer MID 81, Samba answers the MID it was asked with.
      nmap_scenario "$s" srv_nt1 'smb.cmd == 0x32 && smb.flags.response == 0' 'smb.cmd == 0x32 && smb.flags.response == 1' -- \
        -Pn -n -p445 --max-retries 1 --script-timeout 60s --script smb-double-pulsar-backdoor "$SRV4" ;;
    scan_445_sweep)
      # SYN sweep of 192.0.2.0/24 port 445 through the router 192.0.2.1:
      # .20 and .21 run smbd (SYN-ACK), .22 and the router itself are up
      # without smbd (RST), every other address has no host (no answer).
      setup_extra_net
      local conf
      conf=$(write_server_conf "$s" 445 yes "${srv_default[@]}")
      start_smbd "$conf" 445
      start_extra_smbd "$NS_SRV2" srv2 "$conf"
      setup_router
      start_capture eth "$WORK/$s.pcap"
      nmapc -sS -Pn -n -p445 --max-retries 1 --host-timeout 5s --max-rate 500 192.0.2.0/24
      finish_capture
      client_routes_direct
      stop_extra_smbds
      stop_smbd
      check_pcap "$WORK/$s.pcap" "ip.src == $SRV4 && tcp.flags.syn == 1 && tcp.flags.ack == 1"
      check_pcap "$WORK/$s.pcap" "ip.src == $SRV2_4 && tcp.flags.syn == 1 && tcp.flags.ack == 1"
      check_pcap "$WORK/$s.pcap" "ip.src == $SRV3_4 && tcp.flags.reset == 1"
      publish "$s" "$WORK/$s.pcap" ;;
    control_reconnects)
      local conf i
      conf=$(write_server_conf "$s" 445 yes "${srv_default[@]}")
      start_smbd "$conf" 445
      start_capture eth "$WORK/$s.pcap"
      for i in $(seq 20); do smbc SMB2_02 SMB3 -- 'ls' || log "  (client exit status $?)"; done
      finish_capture
      stop_smbd
      check_pcap "$WORK/$s.pcap" 'tcp.stream == 19 && smb2.cmd == 3 && smb2.flags.response == 1 && smb2.nt_status == 0'
      publish "$s" "$WORK/$s.pcap" ;;
    control_large_copy)
      # 2 MiB file read in one `get`
      head -c 2097152 < <(yes 'smbwatch large copy control line') >"$SRV/share/large.txt"
      chmod 644 "$SRV/share/large.txt"
      one_session "$s" eth 'smb2.cmd == 8 && smb2.flags.response == 1' srv_default SMB2_02 SMB3 -- \
        'get large.txt /dev/null'
      rm -f "$SRV/share/large.txt" ;;
    control_three_servers)
      setup_extra_net
      local conf ip rc
      conf=$(write_server_conf "$s" 445 yes "${srv_default[@]}")
      start_smbd "$conf" 445
      start_extra_smbd "$NS_SRV2" srv2 "$conf"
      start_extra_smbd "$NS_SRV3" srv3 "$conf"
      start_capture eth "$WORK/$s.pcap"
      for ip in "$SRV4" "$SRV2_4" "$SRV3_4"; do
        log "  smbclient //$ip/data ls"
        rc=0
        timeout 60 ip netns exec "$NS_CLI" smbclient -s "$CLI/smb.conf" \
          --option="client min protocol=SMB2_02" --option="client max protocol=SMB3" \
          -U "$LAB_USER%$LAB_PASS" "//$ip/data" -c 'ls' </dev/null >"$WORK/client.out" 2>&1 || rc=$?
        sed 's/^/    | /' "$WORK/client.out" >&2
        [[ $rc -eq 0 ]] || log "  (client exit status $rc)"
      done
      finish_capture
      stop_extra_smbds
      stop_smbd
      for ip in "$SRV4" "$SRV2_4" "$SRV3_4"; do
        check_pcap "$WORK/$s.pcap" "ip.src == $ip && smb2.cmd == 3 && smb2.flags.response == 1 && smb2.nt_status == 0"
      done
      publish "$s" "$WORK/$s.pcap" ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------- SMB1 uses
# What an SMB1 connection is used for, as the retirement report classifies it:
# RAP browsing over \PIPE\LANMAN on port 139 beside an SMB3 file session,
# printing to a printable share, DCE/RPC over a named pipe.

# rpcc MIN MAX RPCCLIENT_ARGS...: rpcclient in the client namespace, bounded in
# time. rpcclient connects to IPC$ with the "client ipc min/max protocol"
# settings: "client max protocol" (and -m) alone leave it at SMB3 (it offers
# SMB1 + SMB2 and upgrades).
rpcc() {
  local min=$1 max=$2; shift 2
  log "  rpcclient min=$min max=$max $*"
  local rc=0
  timeout 60 ip netns exec "$NS_CLI" rpcclient -s "$CLI/smb.conf" \
    --option="client min protocol=$min" --option="client max protocol=$max" \
    --option="client ipc min protocol=$min" --option="client ipc max protocol=$max" "$@" \
    </dev/null >"$WORK/client.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/client.out" >&2
  return "$rc"
}

run_smb1_use_scenario() {
  local s=$1
  local -a srv_nt1=("server min protocol = NT1" "server max protocol = SMB3")
  case $s in
    smb1_browsing_139)
      # One smbd on 445 and 139. First an SMB3 file session on 445 (ls, get),
      # then `smbclient -L` forced to NT1 on port 139. smbclient 4.17 lists
      # shares over DCE/RPC (srvsvc) first and falls back to RAP NetShareEnum
      # over \PIPE\LANMAN when the pipe cannot be opened: with "rpc start on
      # demand helpers = no" and no samba-dcerpcd running, smbd has no srvsvc.
      # On port 139 with SMB1 it then lists the workgroup on the same
      # connection: RAP NetServerEnum2 (smbd answers from its browse list,
      # which is empty without nmbd).
      local -a srv_browse=("${srv_nt1[@]}" "rpc start on demand helpers = no")
      local conf
      conf=$(write_server_conf "$s" "445 139" no "${srv_browse[@]}")
      start_smbd "$conf" 139
      start_capture eth "$WORK/$s.pcap"
      smbc SMB2_02 SMB3 -- "$SESSION_CMDS" || log "  (client exit status $?)"
      smbc_auth NT1 NT1 -p 139 -U "$LAB_USER%$LAB_PASS" -L "$SRV4" || log "  (client exit status $?)"
      finish_capture
      stop_smbd
      check_pcap "$WORK/$s.pcap" 'tcp.port == 445 && smb2.cmd == 8 && smb2.flags.response == 1'
      check_pcap "$WORK/$s.pcap" 'nbss.type == 0x81 && tcp.dstport == 139'
      check_pcap "$WORK/$s.pcap" 'tcp.dstport == 139 && smb.cmd == 0x25 && lanman.function_code == 0'
      check_pcap "$WORK/$s.pcap" 'tcp.dstport == 139 && smb.cmd == 0x25 && lanman.function_code == 104'
      publish "$s" "$WORK/$s.pcap" ;;
    smb1_printing)
      # A printable share [lp] (printing = bsd, print command = /bin/true:
      # the job is spooled and dropped) and smbclient's `print`, which creates
      # the job on the print share and writes it (NT_CREATE_ANDX, WRITE_ANDX,
      # CLOSE in SMB1). smbd opens the job through spoolss (rpcd_spoolss, which
      # starts samba-bgqd): started on demand, samba-dcerpcd would detach and
      # outlive the scenario, so it runs next to smbd as in auth_anonymous.
      mkdir -p "$SRV/spool"
      chmod 1777 "$SRV/spool"
      printf 'smbwatch lab print job\n' >"$CLI/printjob.txt"
      local SRV_EXTRA_SECTIONS="[lp]
    path = $SRV/spool
    printable = yes
    printing = bsd
    printer name = lp
    print command = /bin/true %s
    lpq command = /bin/true
    lprm command = /bin/true
    lppause command = /bin/true
    lpresume command = /bin/true
    browseable = yes"
      local -a srv_print=("${srv_nt1[@]}" "rpc start on demand helpers = no")
      auth_start "$s" srv_print 1
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" "//$SRV4/lp" -c "print $CLI/printjob.txt" || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0x75 && smb.flags.response == 1 && smb.service == "LPT1:"' ;;
    smb1_named_pipe)
      # rpcclient srvinfo forced to NT1: IPC$, NT_CREATE_ANDX \srvsvc, DCE/RPC
      # bind and NetSrvGetInfo (opnum 21) in SMB1 TRANSACTIONs on the pipe
      # (samba-dcerpcd started next to smbd, as in auth_anonymous).
      local -a srv_rpc=("${srv_nt1[@]}" "rpc start on demand helpers = no")
      auth_start "$s" srv_rpc 1
      rpcc NT1 NT1 -U "$LAB_USER%$LAB_PASS" -c 'srvinfo' "$SRV4" || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0xa2 && smb.flags.response == 1 && smb.nt_status == 0' \
        'srvsvc.opnum == 21 && dcerpc.pkt_type == 2' ;;
    *) die "no recipe for $s" ;;
  esac
}

# ---------------------------------------------------------------- after the login
# What a session does once it is logged in: file activity (smbclient at 3.1.1
# and in SMB1), a ransomware-like rewrite of a share, and DCE/RPC
# reconnaissance (rpcclient). All writes go to the writable share "upload".

# activity_files DIR N SIZE PREFIX: N local text files PREFIX-01.txt... of SIZE bytes
activity_files() {
  local dir=$1 n=$2 size=$3 prefix=$4 i
  mkdir -p "$dir"
  for i in $(seq -w 1 "$n"); do
    head -c "$size" < <(yes "smbwatch lab document $prefix-$i, harmless text") >"$dir/$prefix-$i.txt"
  done
}

# ransomware_cmds DIR: sets cmds to the files_ransomware_like session (local files in DIR)
ransomware_cmds() {
  local d=$1 i
  activity_files "$d" 30 2048 doc
  mkdir -p "$d/locked"
  for i in $(seq -w 1 30); do head -c 2048 /dev/urandom >"$d/locked/doc-$i.txt.locked"; done
  printf 'smbwatch lab fixture: this is not a ransom note; nothing was encrypted.\n' >"$d/HOW-TO-RESTORE.txt"
  cmds="mkdir finance; cd finance"
  for i in $(seq -w 1 30); do cmds+="; put $d/doc-$i.txt doc-$i.txt"; done
  for i in $(seq -w 1 24); do
    cmds+="; get doc-$i.txt /dev/null; put $d/locked/doc-$i.txt.locked doc-$i.txt.locked; del doc-$i.txt"
  done
  for i in $(seq -w 25 30); do
    cmds+="; get doc-$i.txt /dev/null; rename doc-$i.txt doc-$i.txt.locked; put $d/locked/doc-$i.txt.locked doc-$i.txt.locked"
  done
  cmds+="; put $d/HOW-TO-RESTORE.txt HOW-TO-RESTORE.txt; ls"
}

# smbc_paced PAUSE MIN MAX TARGET CMD... : one smbclient session that reads its
# commands from standard input, PAUSE seconds between two commands (a person at
# the prompt rather than a script)
smbc_paced() {
  local pause=$1 min=$2 max=$3 target=$4; shift 4
  log "  smbclient min=$min max=$max $target (commands $*, ${pause}s apart)"
  local rc=0 c
  { for c in "$@"; do printf '%s\n' "$c"; sleep "$pause"; done; } |
    timeout 180 ip netns exec "$NS_CLI" smbclient -s "$CLI/smb.conf" \
      --option="client min protocol=$min" --option="client max protocol=$max" \
      -U "$LAB_USER%$LAB_PASS" "$target" >"$WORK/client.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/client.out" >&2
  return "$rc"
}

run_activity_scenario() {
  local s=$1
  local -a srv_nt1=("server min protocol = NT1" "server max protocol = SMB3")
  local -a srv_default=("server min protocol = SMB2_02" "server max protocol = SMB3")
  local d="$CLI/$s" cmds i
  case $s in
    files_activity)
      # One 3.1.1 session on "upload": mkdir, three puts, a get, ls
      # (QUERY_DIRECTORY), a rename, deletes (the last file deleted leaves the
      # directory empty) and rmdir.
      activity_files "$d" 3 1500 report
      cmds="mkdir projects; cd projects; put $d/report-1.txt budget.csv; put $d/report-2.txt notes.txt;"
      cmds+=" put $d/report-3.txt draft.txt; get notes.txt /dev/null; ls; rename draft.txt final.txt;"
      cmds+=" del budget.csv; del notes.txt; del final.txt; cd ..; rmdir projects"
      auth_start "$s" srv_default
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "projects" && smb2.create.disposition == 2' \
        'smb2.cmd == 5 && smb2.filename == "projects\\budget.csv" && smb2.flags.response == 0' \
        'smb2.cmd == 9 && smb2.write_length == 1500' \
        'smb2.cmd == 8 && smb2.flags.response == 1 && smb2.nt_status == 0' \
        'smb2.cmd == 14 && smb2.flags.response == 1 && smb2.nt_status == 0' \
        'smb2.cmd == 17 && smb2.file_info.infolevel == 10 && smb2.filename == "projects\\final.txt"' \
        'smb2.cmd == 5 && smb.create_options & 0x1000 && smb2.filename == "projects\\budget.csv"' \
        'smb2.cmd == 17 && smb2.file_info.infolevel == 13 && smb2.disposition.delete_on_close == 1' ;;
    files_ransomware_like)
      # One 3.1.1 session: 30 documents written to upload\finance, then for
      # each: read it, write NAME.locked (random bytes, same size) and delete
      # the original (doc-01..24), or rename it to NAME.locked and overwrite
      # that with random bytes (doc-25..30); finally a ransom-note-like text
      # file. Random bytes come from /dev/urandom, nothing is encrypted.
      ransomware_cmds "$d"
      auth_start "$s" srv_default
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename contains "locked" && smb2.flags.response == 0' \
        'smb2.cmd == 5 && smb2.filename == "finance\\doc-30.txt.locked" && smb2.create.disposition == 5' \
        'smb2.cmd == 5 && smb.create_options & 0x1000 && smb2.filename == "finance\\doc-24.txt"' \
        'smb2.cmd == 17 && smb2.file_info.infolevel == 10 && smb2.filename == "finance\\doc-25.txt.locked"' \
        'smb2.cmd == 8 && smb2.flags.response == 1 && smb2.nt_status == 0' \
        'smb2.cmd == 5 && smb2.filename == "finance\\HOW-TO-RESTORE.txt"' ;;
    files_smb1)
      # SMB1 (NT1) session on "upload": mkdir (SMB_COM_CREATE_DIRECTORY),
      # puts (NT_CREATE_ANDX, WRITE_ANDX, CLOSE), a get (TRANS2
      # QUERY_FILE_INFORMATION, READ_ANDX), ls (TRANS2 FIND_FIRST2), a plain
      # rename (SMB_COM_RENAME), a replacing rename "rename A B -f" (TRANS2
      # SET_PATH_INFORMATION level 1010, pass-through FileRenameInformation:
      # smbd 4.17 answers STATUS_NOT_SUPPORTED, so memo.txt keeps its name),
      # utimes (TRANS2 SET_PATH_INFORMATION level 1004, FileBasicInformation),
      # deletes (SMB_COM_DELETE) and rmdir (SMB_COM_DELETE_DIRECTORY).
      # smbclient 4.17 sends no TRANS2 SET_FILE_INFORMATION for these commands.
      activity_files "$d" 3 1500 legacy
      cmds="mkdir legacy; cd legacy; put $d/legacy-1.txt old.txt; put $d/legacy-2.txt ledger.txt;"
      cmds+=" put $d/legacy-3.txt memo.txt; get ledger.txt /dev/null; ls; rename old.txt older.txt;"
      cmds+=" rename memo.txt memo-final.txt -f; utimes ledger.txt -1 -1 2020:01:01-00:00:00 -1;"
      cmds+=" del older.txt; del ledger.txt; del memo.txt; cd ..; rmdir legacy"
      auth_start "$s" srv_nt1
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0xa2 && smb.flags.response == 0 && smb.file contains "ledger.txt"' \
        'smb.cmd == 0x2f && smb.flags.response == 0' 'smb.cmd == 0x2e && smb.flags.response == 1' \
        'smb.cmd == 0x04' 'smb.cmd == 0x07 && smb.flags.response == 1 && smb.nt_status == 0' \
        'smb.cmd == 0x06 && smb.flags.response == 1 && smb.nt_status == 0' \
        'smb.cmd == 0x00 && smb.flags.response == 1 && smb.nt_status == 0' \
        'smb.cmd == 0x01 && smb.flags.response == 1 && smb.nt_status == 0' \
        'smb.trans2.cmd == 0x0006 && smb.spi_loi == 1010 && smb.file == "\\legacy\\memo.txt"' \
        'smb.trans2.cmd == 0x0006 && smb.spi_loi == 1004 && smb.file == "\\legacy\\ledger.txt"' \
        'smb.trans2.cmd == 0x0001 && smb.flags.response == 1 && smb.nt_status == 0' ;;
    files_backup_read_all)
      # A backup job: 60 existing files (data\backup\hr, \it, \sales, 20 each,
      # 512 bytes) read by one 3.1.1 session with `recurse; prompt; mget *`
      # into a local folder. Nothing is written on the server.
      local b="$SRV/share/backup" sub
      for sub in hr it sales; do activity_files "$b/$sub" 20 512 "$sub"; done
      chmod -R a+rX "$b"
      mkdir -p "$d"
      auth_start "$s" srv_default
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/data" \
        -c "lcd $d; cd backup; recurse; prompt; mget *" || log "  (client exit status $?)"
      rm -rf "$b"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "backup\\sales\\sales-20.txt" && smb2.flags.response == 0' \
        'smb2.cmd == 14 && smb2.flags.response == 1 && smb2.nt_status == 0' \
        '=60:smb2.cmd == 8 && smb2.flags.response == 1 && smb2.nt_status == 0 && smb2.olb.length == 512' \
        'none:smb2.cmd == 9 || smb2.cmd == 17' ;;
    files_deployment_many_new)
      # A software deployment: one 3.1.1 session on "upload" makes the new
      # tree deploy\app\{bin,conf,lib} and writes 20 new 400-byte files into
      # each (CREATE -> FILE_CREATED); nothing existing is changed.
      local sub
      for sub in bin conf lib; do activity_files "$d/$sub" 20 400 "$sub"; done
      cmds="mkdir deploy; cd deploy; mkdir app; cd app"
      for sub in bin conf lib; do
        cmds+="; mkdir $sub; cd $sub"
        for i in $(seq -w 1 20); do cmds+="; put $d/$sub/$sub-$i.txt $sub-$i.txt"; done
        cmds+="; cd .."
      done
      auth_start "$s" srv_default
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      rm -rf "$SRV/upload/deploy"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "deploy\\app\\lib" && smb2.create.disposition == 2' \
        'smb2.cmd == 5 && smb2.filename == "deploy\\app\\lib\\lib-20.txt" && smb2.flags.response == 0' \
        '=65:smb2.cmd == 5 && smb2.flags.response == 1 && smb2.create.action == 2' \
        '=60:smb2.cmd == 9 && smb2.flags.response == 0 && smb2.write_length == 400' \
        'none:smb2.create.action == 3 || smb2.cmd == 17' ;;
    files_user_renames_few)
      # A user tidying a folder at the smbclient prompt, 5 s between commands:
      # ls, 4 renames, 2 deletes, ls, in upload\reports (6 existing files
      # owned by alice).
      local r="$SRV/upload/reports" f
      mkdir -p "$r"
      for f in q1 q2 q3 q4 old-draft scratch; do
        printf 'smbwatch lab report %s, harmless text\n' "$f" >"$r/$f.txt"
      done
      chown -R "$LAB_UID:$LAB_UID" "$r"
      auth_start "$s" srv_default
      smbc_paced 5 SMB3_11 SMB3_11 "//$SRV4/upload" 'cd reports' 'ls' \
        'rename q1.txt q1-final.txt' 'rename q2.txt q2-final.txt' 'rename q3.txt 2023-q3.txt' \
        'rename q4.txt 2023-q4.txt' 'del old-draft.txt' 'del scratch.txt' 'ls' || log "  (client exit status $?)"
      rm -rf "$r"
      auth_finish "$s" 'smb2.cmd == 17 && smb2.file_info.infolevel == 10 && smb2.filename == "reports\\2023-q4.txt"' \
        'smb2.cmd == 5 && smb.create_options & 0x1000 && smb2.filename == "reports\\scratch.txt"' \
        '=4:smb2.cmd == 17 && smb2.flags.response == 1 && smb2.nt_status == 0' ;;
    files_ransomware_encrypted)
      # files_ransomware_like's session with "server smb encrypt = required":
      # after SESSION_SETUP everything (tree connects, CREATE, READ, WRITE,
      # SET_INFO, CLOSE) is inside SMB2 TRANSFORM headers.
      local -a srv_enc=("${srv_default[@]}" "server smb encrypt = required")
      ransomware_cmds "$d"
      auth_start "$s" srv_enc
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      rm -rf "$SRV/upload/finance"
      auth_finish "$s" 'smb2.header.transform.msg_size' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' \
        'none:smb2.cmd >= 2' \
        'none:smb2.filename' ;;
    files_ransomware_smb1)
      # SMB1 (NT1) on "upload": 25 documents written to records\, then each
      # renamed to .locked (SMB_COM_RENAME) and overwritten in place with
      # 2048 random bytes (NT_CREATE_ANDX FILE_OVERWRITE_IF -> FILE_OVERWRITTEN).
      activity_files "$d" 25 2048 doc
      mkdir -p "$d/locked"
      for i in $(seq -w 1 25); do head -c 2048 /dev/urandom >"$d/locked/doc-$i.txt.locked"; done
      cmds="mkdir records; cd records"
      for i in $(seq -w 1 25); do cmds+="; put $d/doc-$i.txt doc-$i.txt"; done
      for i in $(seq -w 1 25); do
        cmds+="; rename doc-$i.txt doc-$i.txt.locked; put $d/locked/doc-$i.txt.locked doc-$i.txt.locked"
      done
      auth_start "$s" srv_nt1
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" "//$SRV4/upload" -c "$cmds" || log "  (client exit status $?)"
      rm -rf "$SRV/upload/records"
      auth_finish "$s" 'smb.cmd == 0x07 && smb.flags.response == 0 && smb.file == "\\records\\doc-25.txt.locked"' \
        '=25:smb.cmd == 0x07 && smb.flags.response == 1 && smb.nt_status == 0' \
        '=25:smb.cmd == 0xa2 && smb.flags.response == 1 && smb.create.action == 3' ;;
    rpc_recon)
      # rpcclient over SMB 3.1.1 with samba-dcerpcd beside smbd: srvsvc,
      # samr and lsarpc over named pipes on IPC$, NTLMSSP-authenticated binds.
      local -a srv_rpc=("${srv_default[@]}" "rpc start on demand helpers = no")
      auth_start "$s" srv_rpc 1
      rpcc SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" \
        -c 'srvinfo; netshareenumall; enumdomusers; querydominfo; sign; lsaquery; lookupnames alice; getusername' \
        "$SRV4" || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "srvsvc"' 'smb2.cmd == 5 && smb2.filename == "samr"' \
        'smb2.cmd == 5 && smb2.filename == "lsarpc"' 'srvsvc.opnum == 15 && dcerpc.pkt_type == 2' \
        'samr.opnum == 13 && dcerpc.pkt_type == 2' 'lsarpc.opnum == 14 && dcerpc.pkt_type == 2' \
        'lsarpc.opnum == 45 && dcerpc.pkt_type == 2' 'smb2.cmd == 1 && ntlmssp.messagetype == 3' \
        'dcerpc.cn_bind_to_uuid == 12345778-1234-abcd-ef00-0123456789ab && dcerpc.auth_level == 5' ;;
    *) die "no recipe for $s" ;;
  esac
}

# ---------------------------------------------------------------- smbclient controls
# Benign smbclient uses that look like parts of an attack: an executable-named
# file copied to ADMIN$ without any RPC, and share listings (srvsvc
# NetShareEnumAll over \srvsvc), authenticated and anonymous.
run_client_control_scenario() {
  local s=$1
  local -a srv_default=("server min protocol = SMB2_02" "server max protocol = SMB3")
  local -a srv_rpc=("${srv_default[@]}" "rpc start on demand helpers = no")
  case $s in
    admin_share_copy_exe)
      # `put tool.exe` to a disk share named ADMIN$ (a temp dir writable by
      # alice), 3.1.1. tool.exe is "MZ" and a line of text, not a program.
      mkdir -p "$SRV/admin"
      chmod 777 "$SRV/admin"
      printf 'MZsmbwatch lab fixture: not a program, nothing to run.\n' >"$CLI/tool.exe"
      local SRV_EXTRA_SECTIONS="[ADMIN\$]
    path = $SRV/admin
    read only = no
    browseable = yes"
      auth_start "$s" srv_default
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" "//$SRV4/ADMIN\$" -c "put $CLI/tool.exe tool.exe" ||
        log "  (client exit status $?)"
      rm -rf "$SRV/admin"
      auth_finish "$s" 'smb2.cmd == 3 && smb2.flags.response == 0 && smb2.tree contains "ADMIN$"' \
        'smb2.cmd == 5 && smb2.tree contains "ADMIN$" && smb2.filename == "tool.exe" && smb2.flags.response == 0' \
        'smb2.cmd == 5 && smb2.flags.response == 1 && smb2.create.action == 2' \
        'smb2.cmd == 9 && smb2.flags.response == 0 && smb2.tree contains "ADMIN$" && smb2.write_length == 55 && data.data[0:2] == 4d:5a' \
        'none:dcerpc' ;;
    smbclient_list_auth)
      # `smbclient -L` as alice at 3.1.1, samba-dcerpcd beside smbd (as in
      # auth_anonymous): IPC$, \srvsvc, NetShareEnumAll (opnum 15)
      auth_start "$s" srv_rpc 1
      smbc_auth SMB3_11 SMB3_11 -U "$LAB_USER%$LAB_PASS" -L "$SRV4" || log "  (client exit status $?)"
      auth_finish "$s" 'ntlmssp.messagetype == 3 && ntlmssp.auth.username == "alice"' \
        'smb2.cmd == 5 && smb2.filename == "srvsvc"' \
        'dcerpc.cn_bind_to_uuid == 4b324fc8-1670-01d3-1278-5a47bf6ee188' 'dcerpc.pkt_type == 12 && dcerpc.cn_ack_result == 0' \
        'srvsvc.opnum == 15 && dcerpc.pkt_type == 2 && srvsvc.werror == 0' ;;
    smbclient_list_anonymous)
      # the same listing in a null session (empty user and password), 3.1.1
      auth_start "$s" srv_rpc 1
      smbc_auth SMB3_11 SMB3_11 -U '%' -N -L "$SRV4" || log "  (client exit status $?)"
      auth_finish "$s" 'ntlmssp.messagetype == 3 && ntlmssp.negotiateanonymous == 1' \
        'smb2.cmd == 5 && smb2.filename == "srvsvc"' \
        'srvsvc.opnum == 15 && dcerpc.pkt_type == 2 && srvsvc.werror == 0' ;;
    *) die "no recipe for $s" ;;
  esac
}

# ---------------------------------------------------------------- impacket
# Lateral-movement and coercion tools against the lab's own smbd: impacket's
# psexec.py / smbexec.py / atexec.py, and pcaps/lab/rpc_calls.py (impacket's
# DCE/RPC library) for the calls the coercion attacks and PrintNightmare make.
# impacket is the "lab" extra of pyproject.toml, installed into
# pcaps/lab/.venv (SMBW_LAB_VENV overrides), never into the project's venv.
# The server runs samba-dcerpcd beside smbd (svcctl, srvsvc, lsarpc, netdfs,
# spoolss), has disk shares [ADMIN$] and [C$] (temp dirs writable by alice)
# and a printer [lp]; "upload" is made read-only so that psexec.py's search
# for a writable share stops at ADMIN$; "server smb encrypt = off" keeps
# impacket (which encrypts whenever the server offers it) in clear. Nothing is executed: Samba has no
# service control manager that starts programs, and every file written is a
# few bytes of text.
REPO=$(dirname "$PCAPS")
LAB_VENV=${SMBW_LAB_VENV:-$HERE/.venv}

ensure_lab_venv() {
  if [[ -x $LAB_VENV/bin/python ]] && "$LAB_VENV/bin/python" -c 'import impacket' 2>/dev/null; then return 0; fi
  local -a reqs
  mapfile -t reqs < <(python3 -c 'import sys, tomllib
print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["lab"], sep="\n")' "$REPO/pyproject.toml")
  log "  installing the lab extra (${reqs[*]}) into $LAB_VENV"
  python3 -m venv "$LAB_VENV"
  timeout 600 "$LAB_VENV/bin/pip" install -q "${reqs[@]}" >&2 || die "pip install ${reqs[*]} failed"
}

# impk SCRIPT ARGS...: an impacket example script (or a lab script) in the
# client namespace, bounded in time, no standard input
impk() {
  local script=$1; shift
  [[ $script == */* ]] || script="$LAB_VENV/bin/$script"
  log "  $(basename "$script") $*"
  local rc=0
  timeout 120 ip netns exec "$NS_CLI" "$LAB_VENV/bin/python" "$script" "$@" \
    </dev/null >"$WORK/client.out" 2>&1 || rc=$?
  sed 's/^/    | /' "$WORK/client.out" >&2
  [[ $rc -eq 0 ]] || log "  (exit status $rc)"
}

# impacket_start NAME: the server described above, capture running
impacket_start() {
  local name=$1
  mkdir -p "$SRV/admin" "$SRV/c" "$SRV/spool"
  chmod 777 "$SRV/admin" "$SRV/c"
  chmod 1777 "$SRV/spool"
  local SRV_EXTRA_SECTIONS="[ADMIN\$]
    path = $SRV/admin
    read only = no
    browseable = yes

[C\$]
    path = $SRV/c
    read only = no
    browseable = yes

[lp]
    path = $SRV/spool
    printable = yes
    printing = bsd
    printer name = lp
    print command = /bin/true %s
    lpq command = /bin/true
    lprm command = /bin/true
    lppause command = /bin/true
    lpresume command = /bin/true
    browseable = yes"
  local -a lines=("server min protocol = SMB2_02" "server max protocol = SMB3"
                  "rpc start on demand helpers = no" "disable spoolss = no"
                  "server smb encrypt = off")
  local conf
  conf=$(write_server_conf "$name" 445 yes "${lines[@]}")
  sed -i '/^\[upload\]/,/^$/ s/read only = no/read only = yes/' "$conf"
  start_smbd_auth "$conf" 1
  start_capture eth "$WORK/$name.pcap"
}

IMPK_TARGET="SMBWLAB/$LAB_USER:$LAB_PASS@$SRV4"

run_impacket_scenario() {
  local s=$1
  ensure_lab_venv
  # a harmless stand-in for a service binary: "MZ" and a line of text, no PE
  printf 'MZsmbwatch lab fixture: not a program, nothing to run.\n' >"$CLI/smbwatch-fixture.exe"
  case $s in
    psexec_impacket)
      # Connection 1: psexec.py with -file (our stand-in instead of its
      # RemComSvc binary): srvsvc NetShareEnum, the writable-share probe
      # (data, upload refused; ADMIN$), the upload to ADMIN$, \svcctl
      # OpenSCManagerW (access 0x3f) -> WERR_ACCESS_DENIED, so psexec.py stops
      # and deletes the file. Connection 2: the same steps with impacket's
      # library (rpc_calls.py psexec), asking only SC_MANAGER_CONNECT |
      # CREATE_SERVICE and going on after a refusal: CreateServiceW,
      # StartServiceW, DeleteService, CloseServiceHandle.
      impacket_start "$s"
      impk psexec.py -file "$CLI/smbwatch-fixture.exe" -service-name SmbwatchFixture \
        -remote-binary-name smbwatch-fixture.exe "$IMPK_TARGET" whoami
      impk "$HERE/rpc_calls.py" psexec "$SRV4" "$LAB_USER" "$LAB_PASS" SMBWLAB "$CLI/smbwatch-fixture.exe"
      auth_finish "$s" \
        'smb2.cmd == 5 && smb2.tree contains "ADMIN$" && smb2.filename == "smbwatch-fixture.exe"' \
        'smb2.cmd == 9 && smb2.flags.response == 0 && smb2.tree contains "ADMIN$"' \
        'smb2.cmd == 5 && smb2.filename == "svcctl"' \
        'dcerpc.cn_bind_to_uuid == 367abb81-9844-35f1-ad32-98f038001003' \
        'svcctl.opnum == 15 && dcerpc.pkt_type == 2 && svcctl.rc == 5' \
        'svcctl.opnum == 12 && dcerpc.pkt_type == 0' 'svcctl.opnum == 19 && dcerpc.pkt_type == 0' \
        'smb2.cmd == 5 && smb2.tree contains "ADMIN$" && smb.create_options & 0x1000' ;;
    smbexec_impacket)
      # smbexec.py (share C$): \svcctl OpenSCManagerW; smbd refuses, so no
      # service (smbexec's command lives in the service's binary path).
      impacket_start "$s"
      impk smbexec.py -share 'C$' "$IMPK_TARGET"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "svcctl"' \
        'dcerpc.cn_bind_to_uuid == 367abb81-9844-35f1-ad32-98f038001003' \
        'svcctl.opnum == 15 && dcerpc.pkt_type == 2 && svcctl.rc == 5' ;;
    atexec_impacket)
      # atexec.py: opens \atsvc for the task scheduler (TSCH); smbd 4.17 has
      # no such pipe: STATUS_OBJECT_NAME_NOT_FOUND.
      impacket_start "$s"
      impk atexec.py "$IMPK_TARGET" whoami
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "atsvc" && smb2.flags.response == 0' \
        'smb2.cmd == 5 && smb2.flags.response == 1 && smb2.nt_status == 0xc0000034' ;;
    rpc_coercion_attempts)
      # The calls of PetitPotam (EFSRPC over \lsarpc and \efsrpc), DFSCoerce
      # (\netdfs NetrDfsRemoveStdRoot) and the printer bug (\spoolss
      # RpcOpenPrinter + RpcRemoteFindFirstPrinterChangeNotificationEx),
      # each naming the client 192.0.2.10 (nothing listens there) as the
      # listener.
      impacket_start "$s"
      impk "$HERE/rpc_calls.py" coerce "$SRV4" "$LAB_USER" "$LAB_PASS" SMBWLAB "$CLI4"
      auth_finish "$s" 'dcerpc.cn_bind_to_uuid == c681d488-d850-11d0-8c52-00c04fd90f7e' \
        'smb2.cmd == 5 && smb2.filename == "efsrpc"' \
        'dcerpc.cn_ack_result == 2' \
        'smb2.cmd == 5 && smb2.flags.response == 1 && smb2.nt_status == 0xc0000034' \
        'dcerpc.cn_bind_to_uuid == 4fc742e0-4a10-11cf-8273-00aa004ae673' \
        'netdfs.opnum == 13 && netdfs.dfs_RemoveStdRoot.servername == "192.0.2.10"' \
        'dcerpc.pkt_type == 3 && dcerpc.cn_status == 0x1c010002' \
        'dcerpc.cn_bind_to_uuid == 12345678-1234-abcd-ef00-0123456789ab' \
        'spoolss.opnum == 1 && dcerpc.pkt_type == 2 && spoolss.rc == 0' \
        'spoolss.opnum == 65 && dcerpc.pkt_type == 0 && spoolss.servername == "\\\\192.0.2.10"' \
        'spoolss.opnum == 65 && dcerpc.pkt_type == 2 && spoolss.rc == 0x6ba' ;;
    print_driver_install)
      # PrintNightmare's call, fields only: RpcAddPrinterDriverEx (opnum 89)
      # with a DRIVER_INFO_2 naming files that do not exist; then the benign
      # `rpcclient -c enumdrivers` (EnumPrinterDrivers, opnum 10) and
      # `adddriver` (AddPrinterDriver, opnum 9) with made-up file names.
      impacket_start "$s"
      impk "$HERE/rpc_calls.py" driver "$SRV4" "$LAB_USER" "$LAB_PASS" SMBWLAB "$CLI4"
      rpcc SMB2_02 SMB3 -U "$LAB_USER%$LAB_PASS" \
        -c 'enumdrivers 2; adddriver "Windows x64" "smbwatch-fixture:driver.dll:data.dll:config.dll:help.hlp:NULL:RAW:NULL" 3' \
        "$SRV4" || log "  (client exit status $?)"
      # "driver.dll" in UTF-16LE in the stub (tshark 4.0 does not decode
      # AddPrinterDriverEx), dwFileCopyFlags 0x8014 its last four bytes
      auth_finish "$s" 'spoolss.opnum == 89 && dcerpc.pkt_type == 0 && dcerpc.stub_data contains 64:00:72:00:69:00:76:00:65:00:72:00:2e:00:64:00:6c:00:6c:00' \
        'spoolss.opnum == 89 && dcerpc.pkt_type == 0 && dcerpc.stub_data[-4:4] == 14:80:00:00' \
        'spoolss.opnum == 89 && dcerpc.pkt_type == 2 && spoolss.rc == 0x7c' \
        'spoolss.opnum == 10 && dcerpc.pkt_type == 0' \
        'spoolss.opnum == 9 && dcerpc.pkt_type == 0' 'spoolss.opnum == 9 && dcerpc.pkt_type == 2 && spoolss.rc == 0x43' ;;
    services_impacket)
      # impacket's services.py, one connection per action: list, create
      # (smbwatch-fixture, binary path C:\smbwatch-fixture\fixture.exe, a file
      # that does not exist), start, delete; each opens \svcctl and asks
      # OpenSCManagerW, which smbd refuses (WERR_ACCESS_DENIED), so no
      # CreateServiceW, StartServiceW or DeleteService is sent.
      impacket_start "$s"
      impk services.py "$IMPK_TARGET" list
      impk services.py "$IMPK_TARGET" create -name smbwatch-fixture -display smbwatch-fixture \
        -path 'C:\smbwatch-fixture\fixture.exe'
      impk services.py "$IMPK_TARGET" start -name smbwatch-fixture
      impk services.py "$IMPK_TARGET" delete -name smbwatch-fixture
      auth_finish "$s" 'tcp.stream == 3 && smb2.cmd == 5 && smb2.filename == "svcctl"' \
        'dcerpc.cn_bind_to_uuid == 367abb81-9844-35f1-ad32-98f038001003' \
        'tcp.stream == 3 && svcctl.opnum == 15 && dcerpc.pkt_type == 2' ;;
    samrdump_impacket)
      # impacket's samrdump.py: \samr SamrConnect, EnumerateDomains,
      # LookupDomain, OpenDomain, EnumerateUsers, OpenUser, QueryUserInfo2
      impacket_start "$s"
      impk samrdump.py "$IMPK_TARGET"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "samr"' \
        'dcerpc.cn_bind_to_uuid == 12345778-1234-abcd-ef00-0123456789ac' \
        'samr.opnum == 6 && dcerpc.pkt_type == 2' ;;
    lookupsid_impacket)
      # impacket's lookupsid.py (RIDs up to its default 4000): \lsarpc
      # LsarOpenPolicy2, then LsarQueryInformationPolicy2 for the domain SID,
      # which smbd 4.17 faults (nca_s_op_rng_error), so no LsarLookupSids
      impacket_start "$s"
      impk lookupsid.py "$IMPK_TARGET"
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "lsarpc"' \
        'dcerpc.cn_bind_to_uuid == 12345778-1234-abcd-ef00-0123456789ab' \
        'lsarpc.opnum == 44 && dcerpc.pkt_type == 2' 'lsarpc.opnum == 46 && dcerpc.pkt_type == 0' \
        'dcerpc.pkt_type == 3 && dcerpc.cn_status == 0x1c010002' ;;
    reg_impacket)
      # impacket's reg.py query -keyName HKLM\SOFTWARE: \svcctl to check the
      # RemoteRegistry service (refused), then \winreg OpenLocalMachine,
      # BaseRegOpenKey SOFTWARE, QueryInfoKey and the enumeration
      impacket_start "$s"
      impk reg.py "$IMPK_TARGET" query -keyName 'HKLM\SOFTWARE'
      auth_finish "$s" 'smb2.cmd == 5 && smb2.filename == "winreg"' \
        'dcerpc.cn_bind_to_uuid == 338cd001-2244-31f1-aaaa-900038001003' ;;
    *) die "no recipe for $s" ;;
  esac
}

run_scenario() {
  local s=$1
  log "scenario $s"
  local -a srv_nt1=("server min protocol = NT1" "server max protocol = SMB3")
  local -a srv_default=("server min protocol = SMB2_02" "server max protocol = SMB3")
  case $s in
    smb1_nt1)
      one_session "$s" eth 'smb.cmd == 0x72 && smb.flags.response == 1' srv_nt1 \
        NT1 NT1 -- 'ls' ;;
    smb2_0_2) one_session "$s" eth 'smb2.dialect == 0x0202' srv_default SMB2_02 SMB2_02 -- "$SESSION_CMDS" ;;
    smb2_1)   one_session "$s" eth 'smb2.dialect == 0x0210' srv_default SMB2_10 SMB2_10 -- "$SESSION_CMDS" ;;
    smb3_0)   one_session "$s" eth 'smb2.dialect == 0x0300' srv_default SMB3_00 SMB3_00 -- "$SESSION_CMDS" ;;
    smb3_0_2) one_session "$s" eth 'smb2.dialect == 0x0302' srv_default SMB3_02 SMB3_02 -- "$SESSION_CMDS" ;;
    smb3_1_1) one_session "$s" eth 'smb2.dialect == 0x0311' srv_default SMB3_11 SMB3_11 -- "$SESSION_CMDS" ;;
    bulk_3_0_2)
      # A file-server transfer: a 1 MiB READ stream and a 256 KiB WRITE stream in full-size segments.
      one_session "$s" eth 'smb2.cmd == 8 && smb2.flags.response == 1' srv_default SMB3_02 SMB3_02 -- \
        "get big.txt /dev/null; tcon upload; put $CLI/upload.txt upload.txt" ;;
    smb1_offered_upgraded)
      # smbclient sends an SMB1 multi-protocol NEGOTIATE that also offers
      # "SMB 2.002" and "SMB 2.???"; smbd answers with an SMB2 NEGOTIATE
      # response (dialect 0x02FF) and the client negotiates again in SMB2.
      one_session "$s" eth 'smb2.cmd == 0 && smb2.dialect == 0x02ff' srv_nt1 \
        NT1 SMB3 -- 'ls' ;;
    smb1_refused)
      one_session "$s" eth 'smb.cmd == 0x72' srv_default NT1 NT1 -- 'ls' ;;
    signing_required)
      local -a srv_sign=("${srv_default[@]}" "server signing = mandatory")
      one_session "$s" eth 'smb2.sec_mode.sign_required == 1 && smb2.flags.response == 1' srv_sign \
        SMB2_02 SMB3 -- "$SESSION_CMDS" ;;
    encrypted_3_1_1)
      local -a srv_enc=("${srv_default[@]}" "server smb encrypt = required")
      one_session "$s" eth 'smb2.header.transform.msg_size' srv_enc \
        SMB3_11 SMB3_11 -- "$SESSION_CMDS" ;;
    netbios_139)
      local conf
      conf=$(write_server_conf "$s" "445 139" no "${srv_default[@]}")
      start_smbd "$conf" 139
      start_capture eth "$WORK/$s.pcap"
      smbc SMB2_02 SMB3 -p 139 -- "$SESSION_CMDS"
      finish_capture
      stop_smbd
      check_pcap "$WORK/$s.pcap" 'nbss.type == 0x81 && tcp.dstport == 139'
      check_pcap "$WORK/$s.pcap" 'smb2 && tcp.port == 139'
      publish "$s" "$WORK/$s.pcap" ;;
    ipv6)
      one_session "$s" eth 'ipv6 && smb2.cmd == 1' srv_default \
        SMB2_02 SMB3 -I "$SRV6" -- "$SESSION_CMDS" ;;
    sll2_any)
      one_session "$s" sll2 'sll && smb2.cmd == 1' srv_default SMB2_02 SMB3 -- "$SESSION_CMDS" ;;
    sll_any)
      one_session "$s" sll 'sll && smb2.cmd == 1' srv_default SMB2_02 SMB3 -- "$SESSION_CMDS" ;;
    nanosecond)
      one_session "$s" nano 'smb2.cmd == 1' srv_default SMB2_02 SMB3 -- "$SESSION_CMDS" ;;
    pcapng_two_ifaces)
      local conf
      conf=$(write_server_conf "$s" 445 yes "${srv_default[@]}")
      start_smbd "$conf" 445
      local tmp="$WORK/$s.pcapng"
      start_capture pcapng2 "$tmp"
      smbc SMB2_02 SMB3 -- 'ls'
      smbc SMB2_02 SMB3 -I "$SRV6" -- 'ls'
      finish_capture
      stop_smbd
      check_pcap "$tmp" 'frame.interface_id == 0 && eth && smb2'
      check_pcap "$tmp" 'frame.interface_id == 1 && sll && smb2'
      publish "$s" "$tmp" pcapng ;;
    # ---- authentication (see "auth scenarios" above)
    auth_ntlmv2_smb2)
      auth_start "$s" srv_default
      smbc_auth SMB2_02 SMB3 -U "$LAB_USER%$LAB_PASS" "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 1 && ntlmssp.ntlmv2_response' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' 'smb2.tree contains "data"' ;;
    auth_ntlmv2_smb1)
      auth_start "$s" srv_nt1
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0x73 && ntlmssp.ntlmv2_response' \
        'smb.cmd == 0x73 && smb.flags.response == 1 && smb.nt_status == 0' 'smb.cmd == 0x75 && smb.path' ;;
    auth_ntlmv1)
      # NTLMv1 proper: 24-byte LM and NT responses, no extended session security
      local -a srv_v1=("${srv_default[@]}" "ntlm auth = ntlmv1-permitted")
      auth_start "$s" srv_v1
      smbc_auth SMB2_02 SMB3 -U "$LAB_USER%$LAB_PASS" \
        --option='client ntlmv2 auth = no' --option='ntlmssp_client:ntlm2 = no' \
        "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'ntlmssp.messagetype == 3 && len(ntlmssp.auth.ntresponse) == 24 && ntlmssp.negotiatentlm2 == 0' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' ;;
    auth_ntlmv1_ess)
      # NTLMv1 with extended session security ("NTLM2 session response"):
      # smbclient's default once NTLMv2 is switched off
      local -a srv_v1=("${srv_default[@]}" "ntlm auth = ntlmv1-permitted")
      auth_start "$s" srv_v1
      smbc_auth SMB2_02 SMB3 -U "$LAB_USER%$LAB_PASS" --option='client ntlmv2 auth = no' \
        "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'ntlmssp.messagetype == 3 && len(ntlmssp.auth.ntresponse) == 24 && ntlmssp.negotiatentlm2 == 1' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' ;;
    auth_legacy_smb1)
      # SMB1 without extended security: challenge in the NEGOTIATE response,
      # LMv2/NTLMv2 responses in the OEM/Unicode password fields
      local -a srv_raw=("${srv_nt1[@]}" "raw NTLMv2 auth = yes")
      auth_start "$s" srv_raw
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" --option='client use spnego = no' \
        "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0x73 && smb.flags.response == 0 && smb.account && smb.unicode_pwlen > 24' \
        'smb.cmd == 0x73 && smb.flags.response == 1 && smb.nt_status == 0' ;;
    auth_legacy_ntlmv1_smb1)
      local -a srv_v1=("${srv_nt1[@]}" "ntlm auth = ntlmv1-permitted")
      auth_start "$s" srv_v1
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" --option='client use spnego = no' \
        --option='client ntlmv2 auth = no' "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0x73 && smb.flags.response == 0 && smb.account && smb.unicode_pwlen == 24' \
        'smb.cmd == 0x73 && smb.flags.response == 1 && smb.nt_status == 0' ;;
    auth_plaintext_smb1)
      # The client side of plaintext authentication. Samba 4.17 smbd cannot
      # accept it any more: with "encrypt passwords = no" (deprecated) its only
      # auth methods are "anonymous unix", and the SMB1 session setup path
      # (auth3_check_password_send) passes on only the LM/NT responses that it
      # computes from the plaintext, never the plaintext itself, so the "unix"
      # (PAM) check always fails: STATUS_LOGON_FAILURE. The capture still shows
      # what a plaintext login looks like on the wire. "unicode = no" puts the
      # password in the OEM (ASCII) password field, as old clients did;
      # "client lanman auth = no" (the default) would also disable plaintext.
      local -a srv_plain=("${srv_nt1[@]}" "encrypt passwords = no")
      auth_start "$s" srv_plain
      smbc_auth NT1 NT1 -U "$LAB_USER%$LAB_PASS" --option='client use spnego = no' \
        --option='client ntlmv2 auth = no' --option='client lanman auth = yes' \
        --option='client plaintext auth = yes' --option='unicode = no' \
        "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb.cmd == 0x73 && smb.flags.response == 0 && smb.ansi_password' \
        'smb.cmd == 0x72 && smb.flags.response == 1 && smb.sm.mode == 1 && smb.sm.password == 0' \
        'smb.cmd == 0x73 && smb.flags.response == 1 && smb.nt_status == 0xc000006d' ;;
    auth_guest)
      # unknown user + empty password, "map to guest = Bad User": guest session
      local SRV_EXTRA_SECTIONS="[public]
    path = $SRV/share
    guest ok = yes
    read only = yes"
      local -a srv_guest=("${srv_default[@]}" "map to guest = Bad User")
      auth_start "$s" srv_guest
      smbc_auth SMB2_02 SMB3 -U visitor -N "//$SRV4/public" -c "$SESSION_CMDS" || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0 && smb2.ses_flags.guest == 1' ;;
    auth_anonymous)
      # null session (empty user, empty password) listing the shares over IPC$
      local -a srv_rpc=("${srv_default[@]}" "rpc start on demand helpers = no")
      auth_start "$s" srv_rpc 1
      smbc_auth SMB2_02 SMB3 -U '%' -N -L "$SRV4" || log "  (client exit status $?)"
      auth_finish "$s" 'ntlmssp.messagetype == 3 && ntlmssp.negotiateanonymous == 1' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' 'smb2.tree contains "IPC$"' ;;
    auth_wrong_password)
      auth_start "$s" srv_default
      local i
      for i in 1 2 3; do
        smbc_auth SMB2_02 SMB3 -U "$LAB_USER%WrongPassw0rd$i" "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      done
      auth_finish "$s" 'tcp.stream == 2 && smb2.cmd == 1 && smb2.nt_status == 0xc000006d' ;;
    auth_unknown_user)
      # "map to guest = never" (the lab default): an unknown user is a logon failure
      auth_start "$s" srv_default
      smbc_auth SMB2_02 SMB3 -U "mallory%$LAB_PASS" "//$SRV4/data" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'smb2.cmd == 1 && smb2.nt_status == 0xc000006d' ;;
    auth_kerberos)
      start_dc
      start_capture eth "$WORK/$s.pcap"
      SMBC_CONF="$CLI/smb-krb.conf"
      SMBC_ENV=("KRB5_CONFIG=$CLI/krb5.conf" "KRB5CCNAME=MEMORY:smbwatch-lab")
      smbc_auth SMB2_02 SMB3 --use-kerberos=required -U "$LAB_USER%$LAB_PASS" -I "$SRV4" \
        "//$KRB_DC_FQDN/netlogon" -c 'ls' || log "  (client exit status $?)"
      auth_finish "$s" 'tcp.dstport == 445 && kerberos.msg_type == 14' \
        'tcp.srcport == 445 && kerberos.msg_type == 15' \
        'smb2.cmd == 1 && smb2.flags.response == 1 && smb2.nt_status == 0' 'smb2.tree contains "netlogon"'
      SMBC_CONF=""
      SMBC_ENV=() ;;
    nmap_*|scan_*|control_*) run_scanner_scenario "$s" || die "no recipe for $s" ;;
    smb1_browsing_139|smb1_printing|smb1_named_pipe) run_smb1_use_scenario "$s" ;;
    files_*|rpc_recon) run_activity_scenario "$s" ;;
    *_impacket|rpc_coercion_attempts|print_driver_install) run_impacket_scenario "$s" ;;
    admin_share_copy_exe|smbclient_list_*) run_client_control_scenario "$s" ;;
    *) die "no recipe for $s" ;;
  esac
}

setup_net
setup_samba_files
for s in "${SCENARIOS[@]}"; do
  run_scenario "$s"
done
log "done: ${#SCENARIOS[@]} scenario(s) recorded into $OUT"

# derived/ and crafted/ are built from recorded/smb3_1_1.pcap: keep them in step
if [[ " ${SCENARIOS[*]} " == *" smb3_1_1 "* ]]; then
  log "rebuilding derived/ and crafted/ from recorded/smb3_1_1.pcap"
  timeout 120 python3 "$HERE/derive.py" >&2
  timeout 300 python3 "$PCAPS/crafted/make_crafted.py" >&2
fi
if [[ -f $PCAPS/manifest.toml ]]; then
  log "checking manifest.toml against tshark"
  timeout 600 python3 "$HERE/verify.py" >&2 || die "manifest.toml does not match the new captures (see above)"
fi
