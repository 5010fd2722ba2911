#!/bin/sh
# Builds the offline test image (a root filesystem holding Debian's
# busybox-static, imported with `docker import`) and the local tags the
# example policies match on. Needs a running dockerd; no registry.
set -eu
IMAGE=${IMAGE:-bulkhead-test/busybox:latest}

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www"
	cp /bin/busybox "$root/bin/busybox"
	for a in sh ls cat nc sleep wget httpd ip echo hostname ping true; do
		ln -s busybox "$root/bin/$a"
	done
	echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
	echo ok >"$root/www/index.html"
	tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
fi
# Local tags only: the examples match images by name, as on a real host.
for t in nginx:1.25 backend:1.0 postgres:16 redis:7 rabbitmq:3; do
	docker tag "$IMAGE" "bulkhead-test/$t"
done
echo "$IMAGE"
