#!/usr/bin/env bash
# Load (parse, check, data, compile) of generated policy directories, at growing sizes: the
# wall-clock and CPU (user + system) time and the peak RSS of one `warden eval` per directory,
# which loads the directory and decides one request. Prints a markdown table on stdout. On a
# shared machine the CPU time is the steadier figure: wall-clock time grows with the load.
#
#   benches/load_shapes.sh                      # every shape at its sizes
#   SHAPES="role-chain group-chain" benches/load_shapes.sh
#   WARDEN=target/release/warden OUT=/tmp/warden-shapes benches/load_shapes.sh
#
# Needs a release build (`cargo build --release`), python3 and /usr/bin/time. The generated
# directories go to $OUT (default /tmp/warden-shapes), never into the repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
warden=${WARDEN:-$here/../target/release/warden}
out=${OUT:-/tmp/warden-shapes}
shapes=${SHAPES:-"role-chain group-chain bad-role entities rules role-rules bindings"}

sizes() {
    case $1 in
        role-chain) echo "1000 2500 5000 10000" ;;
        group-chain) echo "2500 5000 10000 20000" ;;
        bad-role) echo "2000 8000 32000 110000" ;;
        entities) echo "125000 250000 500000 1000000" ;;
        *) echo "1000 10000 100000" ;;
    esac
}

echo "| shape | size | wall (s) | CPU (s) | peak RSS (MiB) | outcome |"
echo "|---|---:|---:|---:|---:|---|"
for shape in $shapes; do
    for n in $(sizes "$shape"); do
        dir=$out/$shape-$n
        [ -d "$dir" ] || python3 "$here/gen_shapes.py" "$shape" "$n" "$dir"
        stats=$(mktemp)
        outcome=$(/usr/bin/time -f '%e %U %S %M' -o "$stats" "$warden" eval -p "$dir" \
            --subject 'User::"u1"' --action view --resource 'Photo::"p0"' 2>/dev/null || true)
        read -r seconds user system kib < <(tail -n 1 "$stats")
        rm -f "$stats"
        [ -n "$outcome" ] || outcome="refused (errors)"
        cpu=$(printf '%.2f' "$(echo "$user + $system" | bc)")
        echo "| $shape | $n | $seconds | $cpu | $((kib / 1024)) | ${outcome%% (*} |"
    done
done
