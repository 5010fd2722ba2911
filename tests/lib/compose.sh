# Compose v1 and v2 alike, for the demo and the tests. Sourced.
# compose_cmd: `docker compose` (v2) where its plugin is, else
# `docker-compose` (v1). compose_name PROJECT SERVICE [N]: the name of
# that container (number N, default 1), found by compose's labels: v1
# names it PROJECT_SERVICE_N, v2 PROJECT-SERVICE-N.
compose_cmd() {
	if docker compose version >/dev/null 2>&1; then
		echo "docker compose"
	else
		echo docker-compose
	fi
}
compose_name() {
	docker ps -a --filter "label=com.docker.compose.project=$1" \
		--filter "label=com.docker.compose.service=$2" \
		--filter "label=com.docker.compose.container-number=${3:-1}" \
		--format '{{.Names}}' | head -n 1
}
