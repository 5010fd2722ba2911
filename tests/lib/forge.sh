# Forged frames and what reaches the victim (sourced; needs FORGE_TMP, a
# directory of the caller's): `forge VICTIM SENDER IFACE KIND ARGS...`
# runs tests/lib/sniff.py on IFACE under the command prefix VICTIM (e.g.
# "ip netns exec ns-db", "nsenter -t PID -n"), then tests/lib/attack.py
# KIND under SENDER with every capability but CAP_NET_RAW gone, and
# prints how many of the attack's frames arrived. The marker is
# bh-mark-KIND, or $MARK when set (hex:... for frames that carry no
# marker of their own).
FORGE_PY=/usr/bin/python3 # Debian's, which has python3-scapy
forge() {
	fv=$1 fs=$2 fif=$3 fkind=$4
	shift 4
	fm=${MARK:-"bh-mark-$$-$fkind"}
	rm -f "$FORGE_TMP/ready" "$FORGE_TMP/stop"
	$fv $FORGE_PY tests/lib/sniff.py "$fif" "$fm" "$FORGE_TMP/ready" "$FORGE_TMP/stop" >"$FORGE_TMP/count" &
	fsp=$!
	fn=0
	until [ -s "$FORGE_TMP/ready" ]; do
		fn=$((fn + 1))
		[ $fn -lt 200 ] || { echo "forge: the sniffer did not start" >&2; return 1; }
		sleep 0.05
	done
	$fs setpriv --bounding-set=-all,+net_raw --inh-caps=-all \
		$FORGE_PY tests/lib/attack.py "$fkind" "$fm" "$@"
	sleep 0.3 # the last frame's way across the bridge
	touch "$FORGE_TMP/stop"
	wait "$fsp"
	cat "$FORGE_TMP/count"
}
