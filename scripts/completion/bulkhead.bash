# bash completion for bulkhead. Each command's options are the ones its
# `--help` lists (tests/integration/cli.sh checks that they agree).

_bulkhead_opts() {
	case $1 in
	check) echo "-p --policy --inventory --help" ;;
	plan) echo "-p --policy --inventory --format --audit --fqdn --resolve --dns --docker --help" ;;
	trace) echo "-p --policy --inventory --control --help" ;;
	apply) echo "-p --policy --inventory --audit --replace --fqdn --resolve --dns --docker --help" ;;
	diff) echo "-p --policy --inventory --audit --exit-code --fqdn --resolve --dns --docker --help" ;;
	run) echo "-p --policy --docker --audit --log --control --control-group --resync --user --dns --dns-min-ttl --dns-max-ttl --metrics --help" ;;
	status) echo "--control --json --help" ;;
	reload) echo "--control --help" ;;
	flows) echo "--log --verdict --since --service --container --json --summary --follow --control --help" ;;
	denials) echo "--log --since --service --container --json --summary --suggest -p --policy --follow --control --help" ;;
	graph) echo "-p --policy --inventory --denials --help" ;;
	flush) echo "--help" ;;
	esac
}

_bulkhead() {
	local cur prev cmd i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done
	if [[ -z $cmd ]]; then
		mapfile -t COMPREPLY < <(compgen -W "check plan trace apply diff run status reload flows denials graph flush --help --version" -- "$cur")
		return
	fi
	case $prev in
	-p | --policy)
		mapfile -t COMPREPLY < <(
			compgen -f -X '!*.yaml' -- "$cur"
			compgen -f -X '!*.yml' -- "$cur"
			compgen -d -- "$cur"
		)
		return
		;;
	--inventory | --log | --denials | --docker | --control)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--format)
		mapfile -t COMPREPLY < <(compgen -W "nft json" -- "$cur")
		return
		;;
	--verdict)
		mapfile -t COMPREPLY < <(compgen -W "allowed denied would-deny allowed,denied denied,would-deny" -- "$cur")
		return
		;;
	--control-group)
		mapfile -t COMPREPLY < <(compgen -g -- "$cur")
		return
		;;
	--user)
		mapfile -t COMPREPLY < <(compgen -u -- "$cur")
		return
		;;
	--since)
		mapfile -t COMPREPLY < <(compgen -W "10m 1h 1d 7d" -- "$cur")
		return
		;;
	--fqdn | --service | --container | --resync | --dns | --dns-min-ttl | --dns-max-ttl)
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_bulkhead_opts "$cmd")" -- "$cur")
	elif [[ $cmd == check || $cmd == plan || $cmd == apply || $cmd == diff || $cmd == graph ]]; then
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}
complete -F _bulkhead bulkhead
