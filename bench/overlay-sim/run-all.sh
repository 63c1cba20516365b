#!/bin/sh
# Every run behind bench/RESULTS.md section 8, one JSON line each (plus the command line as "cmd").
# Usage: bench/overlay-sim/run-all.sh BUILD_DIR [small|large|rec|guard|all] > results.jsonl
# small: N = 1,000 (and the D sweep), a few minutes; large: N = 100,000, 10-15 minutes here;
# rec: the recommended variant at 1,000 (and the D sweep) and one 100,000 kill; guard: the rules
# of control/overlay.c at 8f6834a, about a minute.
set -eu
sim="$1/bench/overlay-sim/overlay-sim"
what="${2:-all}"
run() {
	printf '{"cmd":"overlay-sim %s",' "$*"
	"$sim" --json "$@" | sed 's/^{//'
}
if [ "$what" = small ] || [ "$what" = all ]; then
	for lat in dc wan; do
		run --relays 1000 --latency $lat --seed 1
		for trees in shared per-chain; do
			run --relays 1000 --latency $lat --seed 1 --publishers 4 --trees $trees
		done
		for nl in eager lazy; do
			for k in 1 5 10; do
				run --relays 1000 --latency $lat --seed 1 --kill-pct $k --new-links $nl
			done
			run --relays 1000 --latency $lat --seed 1 --kill-tree --new-links $nl
		done
		run --relays 1000 --latency $lat --seed 1 --kill-pct 5 --publishers 4 --trees per-chain
	done
	for nl in eager lazy; do
		for d in 3 4 6 8; do
			for lat in dc wan; do
				for seed in 1 2 3; do
					run --relays 1000 --latency $lat --seed $seed --degree $d \
						--kill-pct 10 --new-links $nl
				done
			done
		done
	done
fi
# The variant section 8 recommends, against the same seeds.
rec="--new-links lazy --prune-guard --graft-on-stall"
if [ "$what" = rec ] || [ "$what" = all ]; then
	for lat in dc wan; do
		for k in 1 5 10; do
			run --relays 1000 --latency $lat --seed 1 --kill-pct $k $rec
		done
		run --relays 1000 --latency $lat --seed 1 --kill-tree $rec
		run --relays 1000 --latency $lat --seed 1 --kill-pct 5 --publishers 4 --trees per-chain \
			$rec
		run --relays 1000 --latency $lat --seed 1 --publishers 4 --prune-guard
	done
	for d in 3 4 6 8; do
		for lat in dc wan; do
			for seed in 1 2 3; do
				run --relays 1000 --latency $lat --seed $seed --degree $d --kill-pct 10 $rec
			done
		done
	done
	run --relays 100000 --latency dc --seed 1 --kill-pct 10 --messages 4000 --kill-at-ms 300 \
		$rec
fi
# control/overlay.c's guards as of 8f6834a (--first-guard), kills after its 500 ms start-up hold.
if [ "$what" = guard ] || [ "$what" = all ]; then
	for lat in dc wan; do
		run --relays 1000 --latency $lat --seed 1 --messages 3000 --first-guard
		run --relays 1000 --latency $lat --seed 1 --messages 3000 --publishers 4 --first-guard
		run --relays 1000 --latency $lat --seed 1 --messages 6000 --kill-at-ms 1500 --kill-pct 10 \
			--first-guard
		run --relays 1000 --latency $lat --seed 1 --messages 6000 --kill-at-ms 1500 --kill-pct 5 \
			--publishers 4 --first-guard
	done
fi
if [ "$what" = large ] || [ "$what" = all ]; then
	run --relays 100000 --latency dc --seed 1
	run --relays 100000 --latency wan --seed 1 --messages 500
	run --relays 100000 --latency dc --seed 1 --publishers 4 --trees per-chain --messages 500
	for k in 1 5 10; do
		run --relays 100000 --latency dc --seed 1 --kill-pct $k --messages 4000 --kill-at-ms 300
	done
	run --relays 100000 --latency dc --seed 1 --kill-tree --messages 4000 --kill-at-ms 300
	run --relays 100000 --latency dc --seed 1 --kill-pct 10 --messages 4000 --kill-at-ms 300 \
		--new-links lazy
fi
