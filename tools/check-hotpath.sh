#!/usr/bin/env bash
# Checks that the worker's packet path makes no syscall, takes no lock, allocates nothing from the
# heap, prints nothing and does no crypto after start-up (see dataplane/README.md).
#
# It reads the hot-path files with comments stripped and looks for the tokens that would break
# that promise. dataplane/lcore.c is exempt by design: it holds the idle strategy (sched_yield,
# nanosleep only when a loop turn found no work) and the thread's start-up and tear-down.
# Start-up code inside a hot file (rly_worker_init/close) is allowed to allocate: functions named
# *_init / *_close / *_create / *_free are skipped.
#
# Usage: tools/check-hotpath.sh [repo root]     exit 0: clean, 1: violations listed
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

HOT_FILES=(dataplane/worker.c dataplane/fanout.c dataplane/repair.c dataplane/repair.h
	dataplane/pkt.h dataplane/subtable.h
	dataplane/dedup.h common/hist.h common/wire.c include/relay/wire.h)

# token regexp (Perl) and why it is banned
BANNED=(
	'\b(malloc|calloc|realloc|free|strdup|rte_malloc|rte_zmalloc|rte_free|mmap|munmap)\s*\(|heap allocation'
	'\b(printf|fprintf|sprintf|snprintf|puts|fputs|fwrite|perror|syslog|rte_log|RTE_LOG)\s*\(|stdio / logging'
	'\b(pthread_mutex_\w+|pthread_spin_\w+|pthread_rwlock_\w+|rte_spinlock_\w+|rte_rwlock_\w+|sem_\w+)\s*\(|lock'
	'\b(read|write|open|close|ioctl|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|poll|epoll_wait|select|syscall|getrandom)\s*\(|syscall'
	'\b(usleep|nanosleep|sleep|sched_yield|clock_gettime|gettimeofday|time)\s*\(|syscall / sleep'
	'\b(crypto_\w+|sodium_\w+|randombytes\w*)\s*\(|crypto'
	'\bsynchronize_rcu\s*\(|blocking RCU call'
)

status=0
for f in "${HOT_FILES[@]}"; do
	[ -f "$f" ] || { echo "check-hotpath: $f is listed as hot but does not exist" >&2; status=1; continue; }
	# Strip comments (the preprocessor keeps line numbers with -dD... use a small perl instead).
	stripped=$(perl -0777 -pe 's{/\*.*?\*/}{ my $c = $&; $c =~ s/[^\n]//g; $c }gse; s{//[^\n]*}{}g' "$f")
	# Blank out start-up/tear-down functions: from a line starting a *_init/_close/_create/_free
	# definition to the closing brace at column 0.
	body=$(printf '%s\n' "$stripped" | awk '
		/^[a-z].*[^a-z_](rly_[a-z_]*_(init|close|create|free))\(/ && !/;[ \t]*$/ { skip = 1 }
		{ print (skip ? "" : $0) }
		skip && /^}/ { skip = 0 }')
	for entry in "${BANNED[@]}"; do
		re=${entry%|*}
		why=${entry##*|}
		hits=$(printf '%s\n' "$body" | grep -nP "$re" || true)
		if [ -n "$hits" ]; then
			while IFS= read -r h; do
				echo "$f:${h%%:*}: $why: ${h#*:}"
			done <<<"$hits"
			status=1
		fi
	done
done
if [ $status -eq 0 ]; then
	echo "check-hotpath: ${#HOT_FILES[@]} hot-path files clean"
fi
exit $status
