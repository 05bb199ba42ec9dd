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
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(dirname "$HERE")
OUT="$PCAPS/recorded"

NS_BR=smbw-lab-br
NS_CLI=smbw-lab-cli
NS_SRV=smbw-lab-srv
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

ALL_SCENARIOS=(
  smb1_nt1 smb2_0_2 smb2_1 smb3_0 smb3_0_2 smb3_1_1
  smb1_offered_upgraded smb1_refused signing_required encrypted_3_1_1
  netbios_139 ipv6 sll2_any sll_any pcapng_two_ifaces nanosecond
  bulk_3_0_2
)

log() { printf '[record] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ${1:-} == --list ]]; then printf '%s\n' "${ALL_SCENARIOS[@]}"; exit 0; fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,41p' "$0"; exit 0; fi
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

teardown_net() {
  ip -n "$NS_BR" link del br0 2>/dev/null || true
  local ns
  for ns in "$NS_CLI" "$NS_SRV" "$NS_BR"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_capture
  stop_smbd
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
  [[ $n -gt 0 ]] || die "$(basename "$file"): no packet matches '$expect'"
}

publish() {
  local name=$1 tmp=$2 ext=${3:-pcap}
  mkdir -p "$OUT"
  chmod 644 "$tmp"
  mv -f "$tmp" "$OUT/$name.$ext"
  log "  -> recorded/$name.$ext ($(stat -c %s "$OUT/$name.$ext") bytes)"
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
