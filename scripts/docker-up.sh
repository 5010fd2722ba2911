#!/bin/sh
# Starts dockerd in the background when none answers, and waits for it.
set -eu
if docker info >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "docker-up: dockerd is not running and we are not root" >&2
	exit 1
fi
log=${DOCKERD_LOG:-/var/log/bulkhead-dockerd.log}
nohup dockerd >"$log" 2>&1 &
i=0
while ! docker info >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 60 ]; then
		echo "docker-up: dockerd did not start; see $log" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	sleep 0.5
done
